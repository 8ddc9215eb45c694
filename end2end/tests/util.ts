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
