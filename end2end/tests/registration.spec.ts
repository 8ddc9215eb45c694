import { test, expect } from '@playwright/test';
import { field, hydrated, shot, signIn } from './util';

test.beforeEach(async ({ page }) => {
  await signIn(page);
});

test('issue an invitation, open the welcome email, save the pre-filled form', async ({ page }) => {
  await page.goto('/registrations');
  await hydrated(page);
  await page.getByLabel('Named contact email').fill('ada@example.com');
  await expect(page.getByLabel('Company', { exact: true })).toHaveValue('ServiceNow Impact');
  await page.getByRole('button', { name: 'Initiate registration' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Registration initiated' })).toContainText(
    'a welcome email went to ada@example.com',
  );
  await expect(page.getByRole('row', { name: /ada@example\.com/ })).toContainText('Waiting for the named contact');
  await shot(page, 'registrations');

  await page.getByRole('link', { name: 'Open the outbox' }).click();
  // Newest first: the email just sent.
  const email = page.getByRole('article').first();
  await expect(email).toContainText('To ada@example.com');
  await shot(page, 'outbox');
  await email.getByRole('link', { name: 'Connect with Impact IDI' }).click();

  await expect(page.getByRole('heading', { name: 'Provider connection' })).toBeVisible();
  await hydrated(page);
  const companyField = page.getByLabel('Company', { exact: true });
  const urlField = page.getByLabel('URL', { exact: true });
  await expect(companyField).toHaveValue('ServiceNow Impact');
  await expect(urlField).toHaveValue(/^http:\/\/127\.0\.0\.1:\d+\/i\/default$/);
  await expect(urlField).not.toBeEditable();
  // A new record reads Pending (the seed's first state); the statuses are blank until it exists.
  await expect(field(page, 'State')).toHaveText('Pending');
  await expect(field(page, 'Outbound status')).toHaveText('');
  await expect(field(page, 'Inbound status')).toHaveText('');
  await shot(page, 'connect-form');

  // Add a new company inline instead of the pre-selected one.
  await companyField.selectOption({ label: 'Add a new company…' });
  await page.getByLabel('New company name').fill('Acme Stores');
  await page.getByRole('button', { name: 'Save' }).click();

  await expect(page).toHaveURL(/\/connections\/\d+$/);
  // Save creates the record (history: Created, from Pending) and starts validation at once
  // (the domain reference's reading of the procedure): it settles as Validated.
  const history = page.getByRole('table', { name: 'History' });
  await expect(history.getByRole('row', { name: /Created/ })).toContainText('Pending');
  await expect(field(page, 'State')).toHaveText('Validated', { timeout: 15_000 });
  await expect(companyField).toHaveValue('Acme Stores');
  await shot(page, 'connection-saved');

  await page.getByRole('link', { name: 'Connections' }).click();
  const row = page.getByRole('table', { name: 'Connections' }).getByRole('row', { name: /Acme Stores/ });
  await expect(row).toContainText('Validated');
  await shot(page, 'connections-list');

  // The used link now explains itself.
  await page.goto('/outbox');
  await page.getByRole('article').first().getByRole('link', { name: 'Connect with Impact IDI' }).click();
  await expect(page.getByRole('heading', { name: 'This registration link has already been used' })).toBeVisible();
});

test('a tampered link shows what happened and offers a fresh one; nothing is created', async ({ page }) => {
  const request = page.request;
  const before = await (await request.get('/api/connections')).json();
  await request.post('/api/invitations', { data: { email: 'eve@example.com', company: 'Tamper Co' } });
  const outbox = await (await request.get('/api/outbox')).json();
  const link: string = outbox[0].link;
  const tampered = link.replace(/token=(.)/, (_m, c) => `token=${c === 'A' ? 'B' : 'A'}`);
  await page.goto(new URL(tampered).pathname + new URL(tampered).search);
  await expect(page.getByRole('heading', { name: 'This registration link is not valid' })).toBeVisible();
  await expect(page.getByRole('alert')).toContainText('ask your Impact Squad to resend the registration email');
  await expect(page.getByText('No welcome email? Ask your Impact Squad to initiate the registration for your instance.')).toBeVisible();
  await shot(page, 'link-tampered');
  // The Connections page, where an administrator waits for the email, says the same.
  await page.goto('/connections');
  await expect(page.getByText('No welcome email? Ask your Impact Squad')).toBeVisible();
  await page.goBack();
  await hydrated(page);
  await page.getByLabel('Your email address').fill('eve@example.com');
  await page.getByRole('button', { name: 'Request a fresh link' }).click();
  await expect(page.getByRole('status')).toContainText('a fresh link is on its way');
  const after = await (await request.get('/api/connections')).json();
  expect(after).toEqual(before);
  const mails = await (await request.get('/api/outbox')).json();
  expect(mails.length).toBe(outbox.length + 1);
});
