import { Page, expect } from '@playwright/test';

export const ADMIN = { email: 'admin@example.com', password: 'e2e admin password 1' };

export const shot = (page: Page, name: string) =>
  page.screenshot({ path: `test-results/screens/${name}.png`, fullPage: true });

/** Waits until the page's WASM has taken over, so clicks reach Rust handlers. */
export async function hydrated(page: Page) {
  await page.waitForFunction(() => (window as any).__hydrated === true, null, { timeout: 20_000 });
}

/** Signs in through the real sign-in form, as a person would. */
export async function signIn(page: Page, email = ADMIN.email, password = ADMIN.password, next = '/') {
  await page.goto(`/login?next=${encodeURIComponent(next)}`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('whoami')).toHaveText(email);
}

export const SIM = `http://127.0.0.1:${process.env.E2E_SIM_PORT ?? 3108}`;

/** Initiates a registration for a fresh simulated provider instance and opens its link. */
export async function openRegistrationLink(page: Page, instance: string, company: string) {
  await page.goto('/registrations');
  await hydrated(page);
  await page.getByLabel('Named contact email').fill(ADMIN.email);
  await page.getByLabel('Company').fill(company);
  await page.getByLabel('Provider instance URL').fill(`${SIM}/i/${instance}`);
  await page.getByRole('button', { name: 'Initiate registration' }).click();
  await expect(page.getByTestId('issued')).toBeVisible();
  await page.goto('/outbox');
  await page.getByTestId('email').first().getByRole('link', { name: 'Connect with Impact IDI' }).click();
  await expect(page.getByRole('heading', { name: 'Provider connection' })).toBeVisible();
  await hydrated(page);
}

export async function setFaults(page: Page, instance: string, faults: object) {
  const r = await page.request.put(`${SIM}/sim/instances/${instance}/faults`, { data: faults });
  expect(r.ok()).toBeTruthy();
}
