import { test, expect } from '@playwright/test';
import { hydrated, screenPath, signIn } from './util';

test('the start page hydrates without page errors: its next step is a link the WASM router follows without reloading the page', async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await signIn(page);
  await page.goto('/');
  await expect(page.getByRole('heading', { name: 'Connect with Impact IDI' })).toBeVisible();
  const step = page.getByTestId('next-step');
  await expect(step.getByRole('heading', { name: 'Next step' })).toBeVisible();
  await hydrated(page);
  await page.screenshot({ path: screenPath('home-hydrated'), fullPage: true });
  // A mark on this document: a full page load would lose it, the router's navigation keeps it.
  await page.evaluate(() => { (window as any).__samePage = true; });
  const link = step.getByRole('link');
  const href = (await link.getAttribute('href')) ?? '';
  expect(href).toMatch(/^\//);
  await link.click();
  await expect(page).toHaveURL((url) => url.pathname === href.split('?')[0]);
  expect(await page.evaluate(() => (window as any).__samePage)).toBe(true);
  expect(errors).toEqual([]);
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });
  test('sign-in and the start page still read well from the server render', async ({ page }) => {
    await signIn(page);
    await page.goto('/');
    await expect(page.getByRole('heading', { name: 'Connect with Impact IDI' })).toBeVisible();
    await expect(page.getByText('Connect this Impact Store App instance')).toBeVisible();
    // The overview and its next step are in the server's render.
    await expect(page.getByTestId('next-step').getByRole('link')).toBeVisible();
    await page.screenshot({ path: screenPath('home-no-js'), fullPage: true });
  });
});

test('operators: /healthz and /readyz answer', async ({ request }) => {
  expect((await request.get('/healthz')).status()).toBe(200);
  const ready = await request.get('/readyz');
  expect(ready.status()).toBe(200);
  expect(await ready.json()).toEqual({ status: 'ready' });
});

test('the bundle travels gzip-compressed to a browser that accepts it', async ({ request }) => {
  // The main module, the glue, the styles, and a page's split-off code with its loader.
  const manifest = await (await request.get('/pkg/__wasm_split_manifest.json')).json();
  const [pageModule] = Object.values(manifest as Record<string, string[]>)[0].filter((f) => f.startsWith('split_'));
  const files = ['impact-connect_bg.wasm', 'impact-connect.js', 'impact-connect.css',
    `${pageModule}.wasm`, '__wasm_split.______________________.js'];
  for (const file of files) {
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

test('each page is a lazy route: opened directly it fetches its own code and hydrates; a link to another page fetches that page\'s code', async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const pages: string[] = [];
  page.on('response', (r) => {
    const m = /\/pkg\/split___(\w+?)_page_view_\d+\.wasm$/.exec(r.url());
    if (m && r.ok()) pages.push(m[1]);
  });
  await signIn(page);
  await page.goto('/users');
  await hydrated(page);
  expect(pages).toContain('users');
  expect(pages).not.toContain('audit');
  await page.getByRole('navigation').getByRole('link', { name: 'Audit' }).click();
  await expect(page.getByRole('heading', { name: 'Audit', level: 1 })).toBeVisible();
  await expect.poll(() => pages).toContain('audit');
  // The other page works once its code is in: its table renders rows from the server.
  await expect(page.getByRole('table')).toBeVisible();
  expect(errors).toEqual([]);
});
