import { test, expect } from '@playwright/test';
import { signIn } from './util';

test('the start page hydrates without page errors: the details toggle, which needs the WASM, opens the details', async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await signIn(page);
  await page.goto('/');
  await expect(page.getByRole('heading', { name: 'Connect with Impact IDI' })).toBeVisible();
  const toggle = page.getByRole('button', { name: /^(Show|Hide) details$/ });
  const details = page.getByText('The named contact administrator opens the registration link');
  await expect(toggle).toHaveText('Show details');
  await expect(page.getByRole('button', { name: 'Show details', expanded: false })).toBeVisible();
  await expect(details).toBeHidden();
  // Until hydration finishes a click does nothing; keep clicking until the WASM answers.
  await expect(async () => {
    if ((await toggle.textContent()) === 'Show details') await toggle.click();
    await expect(details).toBeVisible({ timeout: 500 });
  }).toPass({ timeout: 15_000 });
  await expect(page.getByRole('button', { name: 'Hide details', expanded: true })).toBeVisible();
  await page.screenshot({ path: 'test-results/screens/home-hydrated.png', fullPage: true });
  expect(errors).toEqual([]);
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });
  test('sign-in and the start page still read well from the server render', async ({ page }) => {
    await signIn(page);
    await page.goto('/');
    await expect(page.getByRole('heading', { name: 'Connect with Impact IDI' })).toBeVisible();
    await expect(page.getByText('Connect this Impact Store App instance')).toBeVisible();
    await page.screenshot({ path: 'test-results/screens/home-no-js.png', fullPage: true });
  });
});

test('operators: /healthz and /readyz answer', async ({ request }) => {
  expect((await request.get('/healthz')).status()).toBe(200);
  const ready = await request.get('/readyz');
  expect(ready.status()).toBe(200);
  expect(await ready.json()).toEqual({ status: 'ready' });
});

test('the bundle travels gzip-compressed to a browser that accepts it', async ({ request }) => {
  for (const file of ['impact-connect_bg.wasm', 'impact-connect.js', 'impact-connect.css']) {
    const zipped = await request.get(`/pkg/${file}`, { headers: { 'accept-encoding': 'gzip' } });
    expect(zipped.status(), file).toBe(200);
    expect(zipped.headers()['content-encoding'], file).toBe('gzip');
    expect(zipped.headers()['vary'] ?? '', file).toMatch(/accept-encoding/i);
    const plain = await request.get(`/pkg/${file}`, { headers: { 'accept-encoding': 'identity' } });
    expect(plain.headers()['content-encoding'], file).toBeUndefined();
    // Decoded, the compressed copy is the file itself.
    expect((await zipped.body()).equals(await plain.body()), file).toBe(true);
  }
});
