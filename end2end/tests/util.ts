import { Locator, Page, expect } from '@playwright/test';

export const ADMIN = { email: 'admin@example.com', password: 'e2e admin password 1' };

/** Where a screenshot for a person to look at goes: `screenshots/<run>/`, one folder per run of
 * the suite (scripts/test.sh names them sqlite, postgres and nginx). Not under test-results,
 * which Playwright empties at the start of every run: the later runs would erase the earlier's. */
export const screenPath = (name: string) =>
  `screenshots/${process.env.E2E_RUN ?? 'local'}/${name}.png`;

export const shot = (page: Page, name: string) =>
  page.screenshot({ path: screenPath(name), fullPage: true });

/** Waits until the page's WASM has taken over, so clicks reach Rust handlers. */
export async function hydrated(page: Page) {
  await page.waitForFunction(() => (window as any).__hydrated === true, null, { timeout: 20_000 });
}

/** Signs in through the real sign-in form, as a person would, and sees their email in the top bar. */
export async function signIn(page: Page, email = ADMIN.email, password = ADMIN.password, next = '/') {
  await page.goto(`/login?next=${encodeURIComponent(next)}`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  const topBar = page.getByRole('banner');
  await expect(topBar.getByText(email, { exact: true })).toBeVisible();
  await expect(topBar.getByRole('button', { name: 'Sign out' })).toBeVisible();
}

export const SIM = `http://127.0.0.1:${process.env.E2E_SIM_PORT ?? 3108}`;

/** The Provider connection form's read-only fields, found by their visible labels. */
export const field = (page: Page, label: 'State' | 'Outbound status' | 'Inbound status') =>
  page.getByLabel(label, { exact: true });

/** The live list of onboarding messages on a connection's page. */
export const onboardingMessages = (page: Page) => page.getByRole('list', { name: 'Onboarding messages' });

/**
 * The onboarding messages as a person reads them, in page order, without the time each line
 * starts with ("12:34:56 Onboarding Complete" reads as "Onboarding Complete").
 */
export async function messageTexts(messages: Locator): Promise<string[]> {
  const lines = await messages.getByRole('listitem').allInnerTexts();
  return lines.map((l) => l.trim().replace(/^\d\d:\d\d:\d\d\s+/, ''));
}

/**
 * The sequence numbers of the onboarding messages in page order. Not something a person reads:
 * it is the stream's identity of each event, the one property that proves no event was shown
 * twice and none out of order (two messages may share a text and a second).
 */
export async function messageSeqs(messages: Locator): Promise<number[]> {
  return messages.getByRole('listitem').evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-seq'))));
}

/** Initiates a registration for a fresh simulated provider instance and opens its link. */
export async function openRegistrationLink(page: Page, instance: string, company: string) {
  await page.goto('/registrations');
  await hydrated(page);
  await page.getByLabel('Named contact email').fill(ADMIN.email);
  await page.getByLabel('Company').fill(company);
  await page.getByLabel('Provider instance URL').fill(`${SIM}/i/${instance}`);
  await page.getByRole('button', { name: 'Initiate registration' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Registration initiated' })).toContainText(ADMIN.email);
  await page.goto('/outbox');
  // Newest first: the email just sent.
  const email = page.getByRole('article').first();
  await expect(email).toContainText(`To ${ADMIN.email}`);
  await email.getByRole('link', { name: 'Connect with Impact IDI' }).click();
  await expect(page.getByRole('heading', { name: 'Provider connection' })).toBeVisible();
  await hydrated(page);
}

/** Signs in, saves a new connection from a registration link and onboards it, as an admin does. */
export async function onboard(page: Page, instance: string, company: string) {
  await signIn(page);
  await openRegistrationLink(page, instance, company);
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page).toHaveURL(/\/connections\/\d+$/);
  await expect(field(page, 'State')).toHaveText('Validated', { timeout: 15_000 });
  await page.getByRole('button', { name: 'Connect to provider' }).click();
  await page.getByLabel('Your email').fill(ADMIN.email);
  await page.getByRole('button', { name: 'Allow' }).click();
  await expect(page).toHaveURL(/\/connections\/\d+$/);
  await hydrated(page);
  await expect(onboardingMessages(page)).toContainText('Onboarding Complete', { timeout: 15_000 });
}

export async function setFaults(page: Page, instance: string, faults: object) {
  const r = await page.request.put(`${SIM}/sim/instances/${instance}/faults`, { data: faults });
  expect(r.ok()).toBeTruthy();
}
