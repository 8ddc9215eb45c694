import { test, expect } from '@playwright/test';
import { ADMIN, hydrated, shot, signIn } from './util';

test('an IDI admin sees the actions; an Impact app user sees none and the API refuses them', async ({ browser }) => {
  // The administrator creates a viewer through the Users screen.
  const adminCtx = await browser.newContext();
  const admin = await adminCtx.newPage();
  await signIn(admin);
  await admin.goto('/users');
  await hydrated(admin);
  await admin.getByLabel('Email').fill('viewer@example.com');
  await admin.getByLabel('Password').fill('viewer password 123');
  await admin.getByRole('button', { name: 'Create user' }).click();
  await expect(admin.getByTestId('users')).toContainText('viewer@example.com');
  await shot(admin, 'users');

  // And a connection to look at.
  const sim = `http://127.0.0.1:${process.env.E2E_SIM_PORT ?? 3108}/i/roles`;
  const issued = await admin.request.post('/api/invitations', {
    data: { email: 'roles@example.com', company: 'Roles Co', provider_url: sim },
  });
  expect(issued.status()).toBe(201);
  const mails = await (await admin.request.get('/api/outbox')).json();
  const token = new URL(mails[0].link).searchParams.get('token');
  const created = await admin.request.post('/api/connections', { data: { company: 'Roles Co', registration_token: token } });
  expect(created.status()).toBe(201);
  const id: number = (await created.json()).id;
  await admin.goto(`/connections/${id}`);
  await expect(admin.getByTestId('state')).toHaveText('Validated', { timeout: 15_000 });
  await expect(admin.getByRole('button', { name: 'Connect to provider' })).toBeVisible();
  await expect(admin.locator('form[data-testid=connection-form] button[type=submit]')).toBeVisible();

  const viewerCtx = await browser.newContext();
  const viewer = await viewerCtx.newPage();
  await signIn(viewer, 'viewer@example.com', 'viewer password 123');
  await expect(viewer.getByRole('link', { name: 'Instance registration' })).toHaveCount(0);
  await expect(viewer.getByRole('link', { name: 'Users' })).toHaveCount(0);
  await viewer.goto(`/connections/${id}`);
  await expect(viewer.getByRole('heading', { name: 'Provider connection' })).toBeVisible();
  await expect(viewer.getByTestId('connection-form').getByRole('button')).toHaveCount(0);
  await expect(viewer.getByTestId('company-select')).toBeDisabled();
  await shot(viewer, 'connection-as-viewer');
  const refused = await viewer.request.post(`/api/connections/${id}/actions`, { data: { action: 'register', version: 1 } });
  expect(refused.status()).toBe(403);
  expect((await refused.json()).message).toContain('IDI admin');
  const page = await viewer.goto('/registrations');
  expect(page?.status()).toBe(403);
  await adminCtx.close();
  await viewerCtx.close();
  void ADMIN;
});
