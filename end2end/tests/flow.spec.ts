import { test, expect } from '@playwright/test';
import { ADMIN, hydrated, openRegistrationLink, setFaults, shot, signIn } from './util';

test('Save validates, Connect to provider onboards live, both directions Up, Close', async ({ page }) => {
  test.setTimeout(90_000);
  await signIn(page);
  await openRegistrationLink(page, 'flow', 'Flow Stores');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page).toHaveURL(/\/connections\/\d+$/);
  await hydrated(page);
  // The checks run live and the state turns Validated without a reload.
  await expect(page.getByTestId('state')).toHaveText('Validated', { timeout: 15_000 });
  await expect(page.getByTestId('outbound')).toHaveText('Not onboarded');
  await expect(page.getByTestId('live-checks')).toContainText('Provider is reachable');
  await shot(page, 'flow-validated');

  await page.getByRole('button', { name: 'Connect to provider' }).click();
  // The provider's own authorisation page: the named contact allows access.
  await expect(page.getByRole('heading', { name: /Authorise connection/ })).toBeVisible();
  await shot(page, 'flow-provider-authorise');
  await page.getByLabel('Your email').fill(ADMIN.email);
  await page.getByRole('button', { name: 'Allow' }).click();

  await expect(page).toHaveURL(/\/connections\/\d+$/);
  await hydrated(page);
  const messages = page.getByTestId('onboarding-messages');
  await expect(messages).toContainText('Onboarding Complete', { timeout: 15_000 });
  const texts = await messages.locator('.message').allTextContents();
  const at = (m: string) => texts.indexOf(m);
  expect(at('Provider onboarding started')).toBeGreaterThanOrEqual(0);
  expect(at('Provider onboarding started')).toBeLessThan(at('Syncing settings to complete onboarding'));
  expect(at('Syncing settings to complete onboarding')).toBeLessThan(at('Onboarding Complete'));
  await expect(page.getByTestId('outbound')).toHaveText('Up');
  await expect(page.getByTestId('inbound')).toHaveText('Up');
  await shot(page, 'flow-onboarded');
  await page.getByTestId('close').click();

  // Back in Guided Setup: Mark Complete, then "Verify the connection" unlocks and really runs.
  await expect(page).toHaveURL(/\/guided-setup$/);
  await hydrated(page);
  await shot(page, 'guided-before');
  for (const id of ['learn', 'register', 'establish']) {
    const activity = page.getByTestId(`activity-${id}`);
    await activity.locator('[data-action=mark-complete]').click();
    await expect(activity.getByTestId('activity-status')).toHaveText('Complete');
  }
  await expect(page.getByTestId('activity-verify_connection').getByTestId('activity-status')).not.toHaveText('Locked');
  await page.locator('[data-action=verify-connection]').click();
  await expect(page.getByTestId('connection-check-result')).toHaveAttribute('data-ok', 'true', { timeout: 15_000 });
  await expect(page.getByTestId('round-trip')).toContainText('ms');
  await expect(page.getByTestId('activity-verify_data').getByTestId('activity-status')).not.toHaveText('Locked');
  await page.locator('[data-action=verify-data]').click();
  await expect(page.getByTestId('data-sample')).toContainText('impact_account', { timeout: 15_000 });
  await shot(page, 'guided-verified');
});

test('a bad-credentials provider fails validation; the dashboard explains; fixed and rescanned it validates', async ({ page }) => {
  test.setTimeout(90_000);
  await signIn(page);
  await openRegistrationLink(page, 'faulty', 'Faulty Stores');
  await setFaults(page, 'faulty', { bad_credentials: true });
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page).toHaveURL(/\/connections\/\d+$/);
  await expect(page.getByTestId('state')).toHaveText('Validation failed', { timeout: 15_000 });
  const banner = page.getByTestId('validation-failed');
  await expect(banner).toBeVisible();
  await shot(page, 'fault-banner');
  await banner.getByRole('link', { name: 'Open the health dashboard' }).click();

  await expect(page.getByRole('heading', { name: 'Health dashboard' })).toBeVisible();
  await hydrated(page);
  const issue = page.locator('[data-testid=issue][data-check=credentials]');
  await expect(issue).toContainText('Connection credentials are accepted');
  await expect(issue).toContainText('refused');
  await expect(issue.getByRole('listitem').first()).toBeVisible();
  await shot(page, 'fault-dashboard');

  await setFaults(page, 'faulty', {});
  await page.getByTestId('rescan-all').click();
  await expect(page.getByTestId('no-issues')).toBeVisible({ timeout: 15_000 });
  await expect(page.getByText('Validated', { exact: true })).toBeVisible();
  await shot(page, 'fault-fixed');
});

test('a reload during syncing loses and repeats nothing', async ({ page }) => {
  test.setTimeout(90_000);
  await signIn(page);
  await openRegistrationLink(page, 'slow', 'Slow Stores');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByTestId('state')).toHaveText('Validated', { timeout: 15_000 });
  // Each provider answer now takes 400 ms: onboarding takes a few seconds.
  await setFaults(page, 'slow', { slow_ms: 400 });
  await hydrated(page);
  await page.getByRole('button', { name: 'Connect to provider' }).click();
  await page.getByLabel('Your email').fill(ADMIN.email);
  await page.getByRole('button', { name: 'Allow' }).click();
  await expect(page).toHaveURL(/\/connections\/\d+$/);
  await expect(page.getByTestId('onboarding-messages')).toContainText('Syncing settings', { timeout: 15_000 });
  await page.reload();
  await expect(page.getByTestId('onboarding-messages')).toContainText('Onboarding Complete', { timeout: 20_000 });
  const seqs = await page.locator('[data-testid=onboarding-messages] li').evaluateAll((els) =>
    els.map((e) => Number(e.getAttribute('data-seq'))),
  );
  expect(new Set(seqs).size).toBe(seqs.length);
  expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
  const texts = await page.locator('[data-testid=onboarding-messages] .message').allTextContents();
  expect(texts.filter((t) => t === 'Provider onboarding started').length).toBe(1);
  expect(texts.filter((t) => t === 'Onboarding Complete').length).toBe(1);
  await setFaults(page, 'slow', {});
});
