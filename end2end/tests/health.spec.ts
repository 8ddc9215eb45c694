import { test, expect, Page } from '@playwright/test';
import * as fs from 'fs';
import { ADMIN, field, hydrated, onboard, onboardingMessages, openRegistrationLink, setFaults, shot, signIn } from './util';
import { ownServer } from './own_server';

// After onboarding, the connection is watched: the server runs a heartbeat every 2 s
// (IMPACT_HEALTH_INTERVAL_SECONDS in playwright.config.ts) and the form follows it live.
test('an onboarded connection turns Down when the provider goes away, Up when it is back, Slow when it answers late, and Inbound Down alone when the provider cannot call back', async ({ page }) => {
  test.setTimeout(120_000);
  await onboard(page, 'watched', 'Watched Stores');
  const outbound = field(page, 'Outbound status');
  const inbound = field(page, 'Inbound status');
  await expect(outbound).toHaveText('Up');
  await expect(inbound).toHaveText('Up');

  // Two intervals and the time limit of the heartbeat that finds it (2 s here) at most.
  const within = { timeout: 10_000 };
  await setFaults(page, 'watched', { down: true });
  await expect(outbound).toHaveText('Down', within);
  await expect(inbound).toHaveText('Down', within);
  await expect(page.getByRole('table', { name: 'History' })).toContainText('Connection health check');
  await shot(page, 'health-down');
  // The Impact app admins get an alert email, kept in the Outbox.
  await page.goto('/outbox');
  const alertMail = page.getByRole('article').filter({ hasText: 'Connection Down: Watched Stores' });
  await expect(alertMail).toHaveCount(1);
  await expect(alertMail).toContainText(`To ${ADMIN.email}`);
  await shot(page, 'health-alert-outbox');
  // The home page's overview says so, and its next step leads to the health dashboard.
  await page.goto('/');
  const row = page.getByTestId('overview').getByRole('row').filter({ hasText: 'Watched Stores' });
  await expect(row.getByTestId('outbound')).toHaveText(/Down/);
  const step = page.getByTestId('next-step');
  await expect(step).toContainText('Watched Stores: Outbound is Down, Inbound is Down.');
  await expect(step.getByRole('link', { name: 'Open the health dashboard' })).toHaveAttribute('href', /\/connections\/\d+\/health$/);
  await shot(page, 'health-home-overview-down');
  await page.goBack();
  await page.goBack();
  await hydrated(page);

  await setFaults(page, 'watched', {});
  await expect(outbound).toHaveText('Up', within);
  await expect(inbound).toHaveText('Up', within);

  // Late, but inside the 2 s time limit: above the 1 s threshold is Slow.
  await setFaults(page, 'watched', { slow_ms: 1_400 });
  await expect(outbound).toHaveText('Slow', within);
  await expect(inbound).toHaveText('Up');
  await shot(page, 'health-slow');

  await setFaults(page, 'watched', { inbound_blocked: true });
  await expect(outbound).toHaveText('Up', within);
  await expect(inbound).toHaveText('Down', within);
  await shot(page, 'health-inbound-down');
  await setFaults(page, 'watched', {});
  await expect(inbound).toHaveText('Up', within);

  // A page opened on an onboarded connection follows it live too (its stream stays open).
  await page.reload();
  await hydrated(page);
  await setFaults(page, 'watched', { down: true });
  await expect(outbound).toHaveText('Down', within);
  await setFaults(page, 'watched', {});
  await expect(outbound).toHaveText('Up', within);
});

test('Rescan on an onboarded connection runs the connection health checks; the dashboard shows them, and a failed one turns Outbound Down', async ({ page }) => {
  test.setTimeout(90_000);
  await onboard(page, 'rescanned', 'Rescanned Stores');
  const form = page.url();
  await page.getByRole('button', { name: 'Rescan', exact: true }).click();
  // The record stays Validated and onboarded; the checks run behind it.
  await expect(field(page, 'State')).toHaveText('Validated');
  await page.goto(`${form}/health`);
  await hydrated(page);
  const runs = page.getByTestId('runs');
  await expect(runs).toContainText('Connection health checks');
  const heartbeat = page.locator('tr[data-check="heartbeat"]');
  await expect(heartbeat).toContainText('Heartbeat: the provider answers and calls back');
  await expect(heartbeat).toContainText('Passed');
  await expect(page.locator('tr[data-check="registration"]')).toContainText('Passed');
  await shot(page, 'health-rescan-onboarded');

  // The provider now refuses the credentials: the dashboard's Rescan finds it.
  await setFaults(page, 'rescanned', { bad_credentials: true });
  await page.getByRole('button', { name: 'Rescan', exact: true }).click();
  await expect(page.locator('tr[data-check="credentials"]')).toContainText('Failed', { timeout: 15_000 });
  await shot(page, 'health-rescan-onboarded-failed');
  await page.goto(form);
  await hydrated(page);
  await expect(field(page, 'Outbound status')).toHaveText('Down', { timeout: 10_000 });
  await setFaults(page, 'rescanned', {});
});

test('the Health Dashboard: a provider going down shows in the Resolution center as one issue whose count grows, on its card, and clears when it is back; Scan suites run now', async ({ page }) => {
  test.setTimeout(120_000);
  await onboard(page, 'dashboarded', 'Dashboard Stores');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Health Dashboard' }).click();
  await expect(page).toHaveURL(/\/health$/);
  await expect(page.getByRole('heading', { name: 'Health Dashboard', level: 1 })).toBeVisible();
  await hydrated(page);
  const tabs = page.getByRole('navigation', { name: 'Dashboard tabs' });
  await expect(tabs.getByRole('link', { name: 'Resolution center' })).toHaveAttribute('aria-current', 'page');
  await expect(page.getByTestId('chart').getByRole('listitem')).toHaveCount(24);
  const scoreBefore = Number(await page.getByTestId('dashboard-score').textContent());

  // Two intervals (2 s each here) and the heartbeat's own time limit at most; the open page
  // reads itself again every interval.
  const within = { timeout: 12_000 };
  await setFaults(page, 'dashboarded', { down: true });
  const issue = page.getByTestId('open-issues').locator('tr[data-issue="heartbeat:outbound"]').filter({ hasText: 'Dashboard Stores' });
  await expect(issue).toBeVisible(within);
  await expect(issue).toContainText('Provider answers the heartbeat');
  await expect(issue).toContainText('Critical');
  await expect(issue).toContainText('Connectivity');
  // Seen again at the next heartbeats: the same row, its count growing.
  await expect.poll(async () => Number(await issue.getByTestId('times-seen').textContent()), within).toBeGreaterThanOrEqual(2);
  await expect(issue).toHaveCount(1);
  expect(Number(await page.getByTestId('dashboard-score').textContent())).toBeLessThan(scoreBefore);
  expect(Number(await page.getByTestId('down-count').textContent())).toBeGreaterThanOrEqual(1);
  await shot(page, 'dashboard-resolution-down');

  // The issue's own page: assign, follow, a note, mute for a chosen time, the diagnostic report.
  await issue.getByRole('link', { name: 'Provider answers the heartbeat' }).click();
  await expect(page).toHaveURL(/\/connections\/\d+\/issues\/heartbeat:outbound$/);
  await hydrated(page);
  await expect(page.getByRole('heading', { name: 'Provider answers the heartbeat', level: 1 })).toBeVisible();
  await expect(page.getByTestId('issue-open')).toContainText('seen');
  await page.getByRole('button', { name: 'Assign to me' }).click();
  await expect(page.getByTestId('assignee')).toHaveText(ADMIN.email);
  await page.getByRole('button', { name: 'Follow', exact: true }).click();
  await expect(page.getByTestId('followers')).toHaveText(ADMIN.email);
  await expect(page.getByRole('button', { name: 'Unfollow' })).toBeVisible();
  await page.getByLabel('Add a note').fill('Provider maintenance window tonight');
  await page.getByRole('button', { name: 'Add note' }).click();
  await expect(page.getByTestId('notes')).toContainText('Provider maintenance window tonight');
  await page.getByLabel('Mute for').selectOption({ label: '8 hours' });
  await page.getByRole('button', { name: 'Mute', exact: true }).click();
  await expect(page.getByTestId('muted')).toContainText('until');
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('report').click()]);
  expect(download.suggestedFilename()).toMatch(/^impact-diagnostic-\d+-heartbeat-outbound\.json$/);
  const report = JSON.parse(fs.readFileSync(await download.path(), 'utf8'));
  expect(report.secrets.credentials).toBe('held (redacted)');
  expect(report.workflow.notes[0].text).toBe('Provider maintenance window tonight');
  await shot(page, 'issue-detail');
  await page.getByRole('button', { name: 'Unmute' }).click();
  await expect(page.getByTestId('muted')).toHaveText('no');
  await page.goto('/health');
  await hydrated(page);

  await tabs.getByRole('link', { name: 'Connection health' }).click();
  await expect(page).toHaveURL(/\/health\?tab=connections$/);
  const card = page.getByRole('article', { name: 'Dashboard Stores' });
  // Other tests' connections share this server: the filter finds this one, by company (any
  // case) and health, a page of 25 at most.
  const cards = page.getByTestId('connection-card');
  const filter = page.getByRole('search', { name: 'Filter connections' });
  await filter.getByLabel('Company').fill('dashboard stores');
  await filter.getByLabel('Health').selectOption({ label: 'Down' });
  await filter.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/tab=connections&health=down&company=dashboard(\+|%20)stores/);
  // "… matching (of N)" when other tests' connections are on the server (run alone it has one).
  await expect(page.getByTestId('paging')).toContainText(/Connections 1–1 of 1( matching \(of \d+\))?/);
  await expect(cards).toHaveCount(1);
  await expect(card.getByTestId('health')).toHaveText('Down');
  await shot(page, 'dashboard-connections-filtered');
  await filter.getByLabel('Health').selectOption({ label: 'Up' });
  await filter.getByRole('button', { name: 'Filter' }).click();
  await expect(page.getByText('No connection matches the filter.')).toBeVisible();
  await expect(page.getByTestId('paging')).toHaveText('No connection matches.');
  await expect(cards).toHaveCount(0);
  await filter.getByLabel('Health').selectOption({ label: 'Any' });
  await filter.getByRole('button', { name: 'Filter' }).click();
  await expect(cards).toHaveCount(1);
  await expect(card.getByTestId('health')).toHaveText('Down');
  await expect(card.getByTestId('heartbeats')).not.toHaveText('0');
  await expect(card.getByTestId('round-trip')).toContainText('p95');
  await expect(card.getByTestId('inbound')).toContainText('last');
  await shot(page, 'dashboard-connections-down');

  await setFaults(page, 'dashboarded', {});
  await expect(card.getByTestId('health')).toHaveText('Up', within);
  await expect(card.getByTestId('card-issues')).toHaveText('0');

  // The filter goes with the tab.
  await tabs.getByRole('link', { name: 'Scan suites' }).click();
  await expect(page).toHaveURL(/tab=suites&company=dashboard(\+|%20)stores/);
  await expect(page.getByTestId('suite')).toHaveCount(2);
  const suite = page.locator('[data-testid="suite"][data-suite="connection_health"]').filter({ hasText: 'Dashboard Stores' });
  await expect(suite.getByTestId('schedule')).toContainText('Heartbeat every 2 s');
  const runs = suite.getByTestId('run');
  const before = await runs.count();
  await suite.getByRole('button', { name: 'Run now' }).click();
  await expect(runs).toHaveCount(before + 1, within);
  await expect(runs.first()).toHaveAttribute('data-outcome', 'passed', within);
  await runs.first().locator('summary').click();
  await expect(runs.first().getByRole('row', { name: /Heartbeat: the provider answers and calls back Passed \d+ ms/ })).toBeVisible();
  await shot(page, 'dashboard-suites');

  await tabs.getByRole('link', { name: 'Resolution center' }).click();
  await expect(page.getByTestId('open-issues').locator('tr').filter({ hasText: 'Dashboard Stores' })).toHaveCount(0);
  await shot(page, 'dashboard-resolution-clear');

  // A filter value that is not valid, typed into the address: said, and every connection shown.
  await page.goto('/health?tab=connections&health=purple');
  await hydrated(page);
  await expect(page.getByTestId('filter-error')).toContainText('Health "purple" is not one of down, slow or up.');
  await expect(page.getByTestId('paging')).toContainText(/Connections 1–\d+ of \d+$/);
});

test('the Health Dashboard is live: a Rescan in another tab shows on it at once, not at its next timed reading', async ({ browser }) => {
  test.setTimeout(120_000);
  const instance = 'dashboard-live';
  // A heartbeat a minute: the open dashboard's timer reads it again only every 10 s.
  const own = await ownServer(browser, instance, { IMPACT_HEALTH_INTERVAL_SECONDS: '60' });
  const { context, page } = own;
  try {
    await onboard(page, instance, 'Live Dashboard Stores');
    const dashboard = await context.newPage();
    await dashboard.goto('/health?tab=suites');
    await hydrated(dashboard);
    const suite = dashboard.locator('[data-testid="suite"][data-suite="connection_health"]').filter({ hasText: 'Live Dashboard Stores' });
    await expect(suite.getByTestId('schedule')).toContainText('Heartbeat every 60 s');
    const runs = suite.getByTestId('run');
    // Right after a reading, the timer's next one is 10 s away.
    await dashboard.waitForResponse((r) => r.url().includes('/fn/health_dashboard'));
    const readAt = Date.now();
    const before = await runs.count();
    // The admin's other tab: the connection's own form.
    await page.getByRole('button', { name: 'Rescan', exact: true }).click();
    await expect(runs).toHaveCount(before + 1, { timeout: 8_000 });
    expect(Date.now() - readAt, 'shown by the live stream, before the timed reading').toBeLessThan(9_000);
    await expect(dashboard.getByTestId('stream-status')).toHaveCount(0);
    await shot(dashboard, 'dashboard-live');
  } finally {
    await own.close();
  }
});

test('a check issue links to its knowledge article, which opens', async ({ page }) => {
  await signIn(page);
  await openRegistrationLink(page, 'kb', 'Knowledge Stores');
  await setFaults(page, 'kb', { bad_credentials: true });
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(field(page, 'State')).toHaveText('Validation failed', { timeout: 15_000 });
  await page.goto(new URL(page.url()).pathname + '/health');
  await hydrated(page);
  const issue = page.getByRole('article', { name: 'Connection credentials are accepted' });
  await issue.getByTestId('issue-details').click();
  await expect(page).toHaveURL(/\/issues\/credentials$/);
  await hydrated(page);
  await expect(page.getByTestId('issue-open')).toContainText('seen 1 time');
  await page.getByTestId('article-link').click();
  await expect(page).toHaveURL(/\/help\/KB-/);
  await expect(page.getByRole('heading', { level: 2, name: 'Connection credentials are accepted' })).toBeVisible();
  await expect(page.getByTestId('article').getByRole('listitem').first()).toBeVisible();
  await shot(page, 'knowledge-article');
});

