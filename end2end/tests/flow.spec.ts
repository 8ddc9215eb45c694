import { test, expect } from '@playwright/test';
import {
  ADMIN, field, hydrated, messageSeqs, messageTexts, onboardingMessages, openRegistrationLink, setFaults, shot, signIn,
} from './util';

test('Save validates live; Connect to provider onboards with its messages in order and both directions Up; Close leads to Guided Setup, where Mark Complete unlocks both verifications and each succeeds', async ({ page }) => {
  test.setTimeout(90_000);
  await signIn(page);
  await openRegistrationLink(page, 'flow', 'Flow Stores');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page).toHaveURL(/\/connections\/\d+$/);
  await hydrated(page);
  // The checks run live and the state turns Validated without a reload.
  await expect(field(page, 'State')).toHaveText('Validated', { timeout: 15_000 });
  await expect(field(page, 'Outbound status')).toHaveText('Not onboarded');
  await expect(page.getByRole('list', { name: 'Health scan checks' })).toContainText('Provider is reachable');
  await shot(page, 'flow-validated');

  await page.getByRole('button', { name: 'Connect to provider' }).click();
  // The provider's own authorisation page: the named contact allows access.
  await expect(page.getByRole('heading', { name: /Authorise connection/ })).toBeVisible();
  await shot(page, 'flow-provider-authorise');
  await page.getByLabel('Your email').fill(ADMIN.email);
  await page.getByRole('button', { name: 'Allow' }).click();

  await expect(page).toHaveURL(/\/connections\/\d+$/);
  await hydrated(page);
  const messages = onboardingMessages(page);
  await expect(messages).toContainText('Onboarding Complete', { timeout: 15_000 });
  const texts = await messageTexts(messages);
  const at = (m: string) => texts.indexOf(m);
  expect(at('Provider onboarding started')).toBeGreaterThanOrEqual(0);
  expect(at('Provider onboarding started')).toBeLessThan(at('Syncing settings to complete onboarding'));
  expect(at('Syncing settings to complete onboarding')).toBeLessThan(at('Onboarding Complete'));
  await expect(field(page, 'Outbound status')).toHaveText('Up');
  await expect(field(page, 'Inbound status')).toHaveText('Up');
  await shot(page, 'flow-onboarded');
  await page.getByRole('link', { name: 'Close', exact: true }).click();

  // Back in Guided Setup: Mark Complete, then "Verify the connection" unlocks and really runs.
  // Each activity is the list item named by its title; its status pill is its description.
  await expect(page).toHaveURL(/\/guided-setup$/);
  await expect(page.getByRole('heading', { name: 'Guided Setup' })).toBeVisible();
  await hydrated(page);
  await shot(page, 'guided-before');
  const activity = (title: string) => page.getByRole('listitem', { name: title, exact: true });
  for (const title of [
    'Learn about registering your instance',
    'Register your instance',
    'Establish the connection to the provider instance',
  ]) {
    await activity(title).getByRole('button', { name: 'Mark Complete' }).click();
    await expect(activity(title)).toHaveAccessibleDescription('Complete');
    await expect(activity(title).getByText('Complete', { exact: true })).toBeVisible();
    await expect(activity(title).getByText(`Completed by ${ADMIN.email} on `)).toBeVisible();
  }

  const verifyConnection = activity('Verify the connection');
  await expect(verifyConnection).toHaveAccessibleDescription('Not started');
  await verifyConnection.getByRole('button', { name: 'Verify the connection' }).click();
  // Success is the green status line (a failure is an alert), saying both directions are Up.
  await expect(verifyConnection.getByRole('status')).toHaveText(
    /^The test message went out to the provider and came back to this instance in \d+ ms: Outbound and Inbound are Up\.$/,
    { timeout: 15_000 },
  );
  await expect(verifyConnection.getByRole('row', { name: 'Round trip' })).toHaveText(/^Round trip\s*\d+ ms$/);
  await expect(verifyConnection.getByRole('row', { name: 'Outbound status' })).toHaveText(/Up$/);
  await expect(verifyConnection.getByRole('row', { name: 'Inbound status' })).toHaveText(/Up$/);
  await expect(verifyConnection).toHaveAccessibleDescription('Complete');

  const verifyData = activity('Verify Impact data connection');
  await expect(verifyData).toHaveAccessibleDescription('Not started');
  await verifyData.getByRole('button', { name: 'Verify Impact data connection' }).click();
  await expect(verifyData.getByRole('row', { name: /^impact_account \d+ / })).toBeVisible({ timeout: 15_000 });
  await expect(verifyData.getByRole('status')).toContainText('tables arrived with');
  await expect(verifyData).toHaveAccessibleDescription('Complete');
  await shot(page, 'guided-verified');
});

test('a bad-credentials provider fails validation; the dashboard explains; fixed and rescanned it validates', async ({ page }) => {
  test.setTimeout(90_000);
  await signIn(page);
  await openRegistrationLink(page, 'faulty', 'Faulty Stores');
  await setFaults(page, 'faulty', { bad_credentials: true });
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page).toHaveURL(/\/connections\/\d+$/);
  await expect(field(page, 'State')).toHaveText('Validation failed', { timeout: 15_000 });
  const banner = page.getByRole('alert').filter({ hasText: 'Validation failed: some health scan checks did not pass.' });
  await expect(banner).toBeVisible();
  await shot(page, 'fault-banner');
  // The seed's words: the banner's link is the Health Dashboard.
  await banner.getByRole('link', { name: 'Health Dashboard', exact: true }).click();

  await expect(page.getByRole('heading', { name: 'Health Dashboard' })).toBeVisible();
  await hydrated(page);
  const issue = page.getByRole('article', { name: 'Connection credentials are accepted' });
  await expect(issue.getByRole('heading', { name: 'Connection credentials are accepted' })).toBeVisible();
  await expect(issue).toContainText('refused');
  await expect(issue.getByRole('heading', { name: 'How to fix it' })).toBeVisible();
  await expect(issue.getByRole('listitem').first()).toBeVisible();
  await shot(page, 'fault-dashboard');
  await expect(page.getByTestId('csm-advice')).toHaveCount(0);

  // Two more Rescans that fail the same way: after three failures in a row the dashboard and
  // the form's banner say to contact the Customer Service Manager.
  for (const attempt of [2, 3]) {
    await page.getByRole('button', { name: 'Rescan', exact: true }).click();
    await expect(page.getByTestId('runs').getByRole('row').filter({ hasText: 'Pre-onboarding checks' })
      .filter({ hasText: 'failed' })).toHaveCount(attempt, { timeout: 15_000 });
  }
  await expect(page.getByTestId('csm-advice')).toContainText('Validation has failed 3 times in a row');
  await expect(page.getByTestId('csm-advice')).toContainText('contact your Customer Service Manager');
  await shot(page, 'fault-dashboard-csm');
  await page.getByRole('link', { name: /^Faulty Stores/ }).click();
  await expect(page.getByTestId('validation-failed').getByTestId('csm-advice')).toContainText('Customer Service Manager');
  await shot(page, 'fault-banner-csm');
  await page.goBack();
  await hydrated(page);

  await setFaults(page, 'faulty', {});
  await page.getByRole('button', { name: 'Rescan', exact: true }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Scan complete with no issues.' })).toBeVisible({ timeout: 15_000 });
  await expect(page.getByRole('article', { name: 'Connection credentials are accepted' })).toHaveCount(0);
  await expect(page.getByText('Validated', { exact: true })).toBeVisible();
  await shot(page, 'fault-fixed');
});

test('a reload during syncing loses and repeats nothing', async ({ page }) => {
  test.setTimeout(90_000);
  await signIn(page);
  await openRegistrationLink(page, 'slow', 'Slow Stores');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(field(page, 'State')).toHaveText('Validated', { timeout: 15_000 });
  // Each provider answer now takes 400 ms: onboarding takes a few seconds.
  await setFaults(page, 'slow', { slow_ms: 400 });
  await hydrated(page);
  await page.getByRole('button', { name: 'Connect to provider' }).click();
  await page.getByLabel('Your email').fill(ADMIN.email);
  await page.getByRole('button', { name: 'Allow' }).click();
  await expect(page).toHaveURL(/\/connections\/\d+$/);
  const messages = onboardingMessages(page);
  await expect(messages).toContainText('Syncing settings', { timeout: 15_000 });
  await page.reload();
  await expect(messages).toContainText('Onboarding Complete', { timeout: 20_000 });
  // No event twice and none out of order: checked on the events' sequence numbers (see messageSeqs).
  const seqs = await messageSeqs(messages);
  expect(new Set(seqs).size).toBe(seqs.length);
  expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
  const texts = await messageTexts(messages);
  expect(texts.filter((t) => t === 'Provider onboarding started').length).toBe(1);
  expect(texts.filter((t) => t === 'Onboarding Complete').length).toBe(1);
  await setFaults(page, 'slow', {});
});
