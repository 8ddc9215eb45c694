import { test, expect, Page } from '@playwright/test';
import { ADMIN, SIM, field, hydrated, onboard, openRegistrationLink, setFaults, shot } from './util';

/** The typed confirmation panel the form's "Off-board" button opens. */
const confirmPanel = (page: Page) => page.getByTestId('off-board');

async function openOffBoard(page: Page) {
  await page.getByTestId('connection-form').getByRole('button', { name: 'Off-board' }).click();
  const panel = confirmPanel(page);
  await expect(panel.getByRole('heading', { name: 'Off-board this connection' })).toBeVisible();
  return panel;
}

test('an IDI admin off-boards an onboarded connection by typing Delete, and the company connects again from a fresh link', async ({ page }) => {
  test.setTimeout(120_000);
  await onboard(page, 'offboard', 'Offboard Stores');
  const firstUrl = page.url();

  const panel = await openOffBoard(page);
  const confirm = panel.getByRole('button', { name: 'Off-board' });
  const typed = panel.getByLabel('Type Delete to confirm');
  // Nothing is sent until the word is typed as it is written.
  await expect(confirm).toBeDisabled();
  await typed.fill('delete');
  await expect(confirm).toBeDisabled();
  await typed.fill('Delete');
  await expect(confirm).toBeEnabled();
  await shot(page, 'offboard-confirm');
  // Cancel closes it and changes nothing.
  await panel.getByRole('button', { name: 'Cancel' }).click();
  await expect(panel).toHaveCount(0);
  await expect(field(page, 'State')).toHaveText('Validated');

  const again = await openOffBoard(page);
  await again.getByLabel('Type Delete to confirm').fill('Delete');
  await again.getByRole('button', { name: 'Off-board' }).click();
  await expect(field(page, 'State')).toHaveText('Off-boarded');
  await expect(field(page, 'Outbound status')).toHaveText('');
  await expect(field(page, 'Inbound status')).toHaveText('');
  await expect(page.getByTestId('off-boarded')).toContainText('To connect Offboard Stores again');
  // Kept to read: its history says who off-boarded it and that the provider removed it.
  const history = page.getByRole('table', { name: 'History' });
  await expect(history).toContainText('Off-board');
  await expect(history).toContainText('The provider removed this consumer');
  // And nothing more can be done with it.
  const form = page.getByTestId('connection-form');
  for (const name of ['Save', 'Rescan', 'Off-board', 'Connect to provider']) {
    await expect(form.getByRole('button', { name })).toHaveCount(0);
  }
  await expect(page.getByLabel('Company')).toBeDisabled();
  await shot(page, 'offboard-done');

  // The same company and provider, from a fresh registration link: a new connection.
  await openRegistrationLink(page, 'offboard', 'Offboard Stores');
  await expect(page.getByRole('button', { name: 'Save' })).toBeVisible();
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page).toHaveURL(/\/connections\/\d+$/);
  expect(page.url()).not.toBe(firstUrl);
  await expect(field(page, 'State')).toHaveText('Validated', { timeout: 15_000 });
  await page.goto('/connections');
  const rows = page.getByRole('row').filter({ hasText: 'Offboard Stores' });
  await expect(rows).toHaveCount(2);
  await expect(rows.filter({ hasText: 'Off-boarded' })).toHaveCount(1);
  await expect(rows.filter({ hasText: 'Validated' })).toHaveCount(1);
  await shot(page, 'offboard-connections');
});

test('a provider that cannot be told leaves the connection as it was, until the admin off-boards without telling it', async ({ page }) => {
  test.setTimeout(120_000);
  await onboard(page, 'offboard-gone', 'Gone Provider Stores');
  await setFaults(page, 'offboard-gone', { down: true });
  const panel = await openOffBoard(page);
  await panel.getByLabel('Type Delete to confirm').fill('Delete');
  // The choice to go on without the provider is offered only once it could not be told.
  await expect(panel.getByTestId('without-provider')).toHaveCount(0);
  await panel.getByRole('button', { name: 'Off-board' }).click();
  await expect(panel.getByTestId('error-banner')).toContainText('Nothing was changed');
  await expect(field(page, 'State')).toHaveText('Validated');
  const without = panel.getByLabel('The provider is gone for good: off-board without telling it');
  await expect(without).toBeVisible();
  await shot(page, 'offboard-provider-down');
  await without.check();
  await panel.getByRole('button', { name: 'Off-board' }).click();
  await expect(field(page, 'State')).toHaveText('Off-boarded');
  await expect(page.getByRole('table', { name: 'History' })).toContainText('without telling the provider');
  await setFaults(page, 'offboard-gone', {});
  // Home: an off-boarded connection is history; with nothing live, the next step is to connect.
  await page.goto('/');
  await hydrated(page);
  await expect(page.getByTestId('overview')).toContainText('Off-boarded');
});

test('revoked credentials are repaired from the health dashboard: a fresh link re-registers the connection, which connects again', async ({ page }) => {
  test.setTimeout(150_000);
  await onboard(page, 'repair', 'Repair Stores');
  const form = page.url();
  // The provider's admin revokes this instance's credentials.
  const revoked = await page.request.post(`${SIM}/sim/instances/repair/revoke`);
  expect(revoked.ok()).toBeTruthy();
  await page.goto(`${form}/health`);
  await hydrated(page);
  await page.getByRole('button', { name: 'Rescan', exact: true }).click();
  await expect(page.locator('tr[data-check="credentials"]')).toContainText('Failed', { timeout: 20_000 });
  await page.reload();
  await hydrated(page);
  const issue = page.getByRole('article').filter({ hasText: 'Connection credentials are accepted' });
  await expect(issue).toBeVisible();
  await expect(issue).toContainText('Re-register this connection');
  await shot(page, 'repair-dashboard');
  // Its fix leads to Instance registration, where the IDI admin sends a fresh link.
  await issue.getByRole('link', { name: 'Send a fresh registration link to re-register' }).click();
  await expect(page).toHaveURL(/\/registrations$/);
  await openRegistrationLink(page, 'repair', 'Repair Stores');
  const resume = page.getByTestId('resume');
  await expect(resume).toContainText('Repair Stores already has a connection');
  await shot(page, 'repair-link');
  await page.getByRole('button', { name: 'Re-register this connection' }).click();
  await expect(page).toHaveURL(form);
  await hydrated(page);
  await expect(field(page, 'State')).toHaveText('Validated', { timeout: 15_000 });
  await expect(page.getByRole('table', { name: 'History' })).toContainText('Re-registered from a fresh registration link');
  // New credentials are a new consumer: connected to the provider again.
  await page.getByRole('button', { name: 'Connect to provider' }).click();
  await page.getByLabel('Your email').fill(ADMIN.email);
  await page.getByRole('button', { name: 'Allow' }).click();
  await expect(page).toHaveURL(form);
  await hydrated(page);
  await expect(field(page, 'Outbound status')).toHaveText('Up', { timeout: 15_000 });
  await expect(field(page, 'Inbound status')).toHaveText('Up');
  await shot(page, 'repair-done');
});

test('Rotate credentials on the form keeps the link up and says until when the old secret is honoured', async ({ page }) => {
  test.setTimeout(90_000);
  await onboard(page, 'rotate', 'Rotate Stores');
  // What onboarding pulled from the provider is there to review.
  const synced = page.getByTestId('synced-settings');
  await expect(synced.getByRole('heading', { name: 'Exchange settings' })).toBeVisible();
  await expect(synced.getByRole('table', { name: 'Exchange settings' })).toContainText('Max authorised users');
  await expect(synced.getByRole('table', { name: 'Sync definitions' }).getByRole('row')).toHaveCount(4);
  await shot(page, 'synced-settings');
  await page.getByRole('button', { name: 'Rotate credentials' }).click();
  const history = page.getByRole('table', { name: 'History' });
  await expect(history).toContainText('Credentials rotated on request; the old secret is honoured until');
  await expect(field(page, 'State')).toHaveText('Validated');
  await expect(field(page, 'Outbound status')).toHaveText('Up');
  await expect(field(page, 'Inbound status')).toHaveText('Up');
  // The link works on the new secret: a Rescan's connection health checks pass.
  await page.getByRole('button', { name: 'Rescan', exact: true }).click();
  await page.goto(`${page.url()}/health`);
  await hydrated(page);
  await expect(page.locator('tr[data-check="credentials"]')).toContainText('Passed', { timeout: 15_000 });
  await shot(page, 'rotate-health');
});

test('a cloned instance reads Instance changed, and Validate and Activate re-establishes the connection for it', async ({ page }) => {
  test.setTimeout(90_000);
  await onboard(page, 'cloned', 'Cloned Stores');
  const form = page.url();
  // The provider now refuses this instance as another than the one it registered.
  await setFaults(page, 'cloned', { instance_changed: true });
  await expect(field(page, 'State')).toHaveText('Instance changed', { timeout: 15_000 });
  await expect(field(page, 'Outbound status')).toHaveText('Down');
  await expect(page.getByRole('table', { name: 'History' })).toContainText('The provider reports this instance changed');
  await expect(page.getByTestId('instance-changed')).toContainText('select Validate and Activate');
  // Home's next step leads here.
  await page.goto('/');
  const step = page.getByTestId('next-step');
  await expect(step.getByRole('link', { name: 'Validate and Activate' })).toHaveAttribute('href', new URL(form).pathname);
  await shot(page, 'clone-home');
  await page.goto(form);
  await hydrated(page);
  await shot(page, 'clone-instance-changed');
  await page.getByRole('button', { name: 'Validate and Activate' }).click();
  await expect(field(page, 'State')).toHaveText('Validated');
  await expect(field(page, 'Outbound status')).toHaveText('Up', { timeout: 15_000 });
  await expect(field(page, 'Inbound status')).toHaveText('Up');
  await expect(page.getByRole('table', { name: 'History' })).toContainText('The provider now knows this instance');
  await shot(page, 'clone-activated');
});
