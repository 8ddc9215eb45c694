import { test, expect, Browser } from '@playwright/test';
import { field, hydrated, shot, signIn } from './util';

/** A signed-in browser of its own for `email`. */
async function signedIn(browser: Browser, email: string, password: string) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await signIn(page, email, password);
  return { ctx, page };
}

test('users made on the Users screen get the roles ticked; an IDI admin alone sees Save and Connect to provider; an Impact app user sees no actions and a read-only form, and the API and the registration screen refuse them', async ({ browser }) => {
  // The first administrator (every role) creates the two users through the Users screen.
  const adminCtx = await browser.newContext();
  const admin = await adminCtx.newPage();
  await signIn(admin);
  await admin.goto('/users');
  await hydrated(admin);
  const newUser = admin.getByRole('form', { name: 'New user' });
  const create = async (email: string, password: string, roles: string[]) => {
    await newUser.getByLabel('Email').fill(email);
    await newUser.getByLabel('Password').fill(password);
    for (const role of ['Impact app admin', 'Impact app user', 'IDI admin']) {
      await newUser.getByRole('checkbox', { name: role, exact: true }).setChecked(roles.includes(role));
    }
    await newUser.getByRole('button', { name: 'Create user' }).click();
    const row = admin.getByRole('row', { name: new RegExp(email.replace(/[.]/g, '\\.')) });
    await expect(row).toBeVisible();
    for (const role of ['Impact app admin', 'Impact app user', 'IDI admin']) {
      const box = row.getByRole('checkbox', { name: role, exact: true });
      if (roles.includes(role)) await expect(box).toBeChecked();
      else await expect(box).not.toBeChecked();
    }
  };
  await create('viewer@example.com', 'viewer password 123', ['Impact app user']);
  await create('idi@example.com', 'idi admin password 123', ['IDI admin']);
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
  await expect(field(admin, 'State')).toHaveText('Validated', { timeout: 15_000 });

  // The IDI admin, with no other role: the registration screens but not Users; the actions.
  const idi = await signedIn(browser, 'idi@example.com', 'idi admin password 123');
  await expect(idi.page.getByRole('link', { name: 'Instance registration' })).toBeVisible();
  await expect(idi.page.getByRole('link', { name: 'Users' })).toHaveCount(0);
  await idi.page.goto(`/connections/${id}`);
  await expect(field(idi.page, 'State')).toHaveText('Validated');
  const idiForm = idi.page.getByRole('form', { name: 'Provider connection' });
  await expect(idiForm.getByRole('button', { name: 'Save' })).toBeVisible();
  await expect(idiForm.getByRole('button', { name: 'Connect to provider' })).toBeVisible();
  await expect(idiForm.getByLabel('Company', { exact: true })).toBeEnabled();
  await shot(idi.page, 'connection-as-idi-admin');

  // The Impact app user: no admin links, no buttons, a read-only form; refused by the API.
  const viewer = await signedIn(browser, 'viewer@example.com', 'viewer password 123');
  await expect(viewer.page.getByRole('link', { name: 'Instance registration' })).toHaveCount(0);
  await expect(viewer.page.getByRole('link', { name: 'Users' })).toHaveCount(0);
  await viewer.page.goto(`/connections/${id}`);
  await expect(viewer.page.getByRole('heading', { name: 'Provider connection' })).toBeVisible();
  await expect(field(viewer.page, 'State')).toHaveText('Validated');
  const viewerForm = viewer.page.getByRole('form', { name: 'Provider connection' });
  await expect(viewerForm).toBeVisible();
  await expect(viewerForm.getByRole('button')).toHaveCount(0);
  await expect(viewerForm.getByLabel('Company', { exact: true })).toBeDisabled();
  await shot(viewer.page, 'connection-as-viewer');
  const refused = await viewer.page.request.post(`/api/connections/${id}/actions`, { data: { action: 'register', version: 1 } });
  expect(refused.status()).toBe(403);
  expect((await refused.json()).message).toContain('IDI admin');
  const registrations = await viewer.page.goto('/registrations');
  expect(registrations?.status()).toBe(403);
  await adminCtx.close();
  await idi.ctx.close();
  await viewer.ctx.close();
});
