import { test, expect, Page } from '@playwright/test';
import { ADMIN, hydrated, onboard, setFaults, shot } from './util';
import { ownServer } from './own_server';

// "Start data migration" in Guided Setup: the provider's tables (three, 9,800 records in the
// simulator) copied into this instance with per-table progress streamed live.

/** The Guided Setup activity named by its title. */
const activity = (page: Page, title: string) => page.getByRole('listitem', { name: title, exact: true });
const MIGRATE = 'Start data migration';

/** Guided Setup up to the migration: what is not yet complete is marked, both verifications run. */
async function upToMigration(page: Page) {
  await page.goto('/guided-setup');
  await hydrated(page);
  for (const title of [
    'Learn about registering your instance',
    'Register your instance',
    'Establish the connection to the provider instance',
  ]) {
    const mark = activity(page, title).getByRole('button', { name: 'Mark Complete' });
    if (await mark.isVisible()) await mark.click();
    await expect(activity(page, title)).toHaveAccessibleDescription('Complete');
  }
  for (const title of ['Verify the connection', 'Verify Impact data connection']) {
    await activity(page, title).getByRole('button', { name: title }).click();
    await expect(activity(page, title)).toHaveAccessibleDescription('Complete', { timeout: 15_000 });
  }
  await expect(activity(page, MIGRATE)).toHaveAccessibleDescription('Not started');
}

/** Records copied so far, as the panel's summary reads ("2,500 of 9,800 records (25%)"). */
async function copied(page: Page): Promise<number> {
  const text = (await page.getByTestId('migration-summary').textContent()) ?? '';
  const m = text.match(/^([\d,]+) of/);
  return m ? Number(m[1].replace(/,/g, '')) : -1;
}

const row = (page: Page, table: string) => page.getByTestId('migration-tables').locator(`tr[data-table="${table}"]`);

test('Start data migration shows each table move live, keeps going through a reload, cancels, and ends with counts that match', async ({ page }) => {
  test.setTimeout(150_000);
  await onboard(page, 'migrate', 'Migrate Stores');
  await upToMigration(page);
  const panel = activity(page, MIGRATE);
  await expect(panel).toContainText('counting each table here against the provider');
  await shot(page, 'migration-before');

  // Each page takes 300 ms at the provider: slow enough to watch.
  await setFaults(page, 'migrate', { data_page_ms: 300 });
  // A mark on the window: it survives only as long as the page is not reloaded.
  await page.evaluate(() => ((window as any).__samePage = true));
  await panel.getByRole('button', { name: 'Start data migration' }).click();
  await expect(panel.getByTestId('migration-state')).toHaveText('Running');
  await expect(panel).toHaveAccessibleDescription('In progress');
  // Live: the counts move while the page sits there.
  await expect.poll(() => copied(page), { timeout: 20_000 }).toBeGreaterThanOrEqual(1000);
  expect(await page.evaluate(() => (window as any).__samePage)).toBe(true);
  await expect(row(page, 'impact_account').getByTestId('total')).toHaveText('2,400');
  await shot(page, 'migration-running');

  // A reload mid-migration shows where it stands, and it keeps moving.
  await page.reload();
  await hydrated(page);
  await expect(page.getByTestId('migration-state')).toHaveText('Running');
  const afterReload = await copied(page);
  expect(afterReload).toBeGreaterThanOrEqual(1000);
  await expect.poll(() => copied(page), { timeout: 20_000 }).toBeGreaterThan(afterReload);

  // Cancel: it stops at once; what was copied is kept and counted here.
  await page.getByRole('button', { name: 'Cancel data migration' }).click();
  await expect(page.getByTestId('migration-state')).toHaveText('Cancelled');
  await expect(page.getByTestId('migration-detail')).toContainText(`cancelled by ${ADMIN.email}`);
  const atCancel = await copied(page);
  await page.waitForTimeout(1000);
  expect(await copied(page)).toBe(atCancel);
  await expect(page.getByTestId('migration-tables').getByRole('columnheader', { name: 'In this instance' })).toBeVisible();
  await shot(page, 'migration-cancelled');

  // Started again (faster now): it runs to the end and every count matches the provider's.
  await setFaults(page, 'migrate', { data_page_ms: 20 });
  await page.getByRole('button', { name: 'Start data migration again' }).click();
  await expect(page.getByTestId('migration-state')).toHaveText('Completed', { timeout: 60_000 });
  await expect(page.getByTestId('migration-summary')).toHaveText('9,800 of 9,800 records (100%)');
  for (const [table, count] of [['impact_account', '2,400'], ['impact_success_plan', '1,800'], ['impact_engagement_request', '5,600']]) {
    await expect(row(page, table).getByTestId('stored')).toHaveText(`${count} ✓`);
  }
  await expect(page.getByTestId('migration-detail')).toHaveText(
    "Data migration complete: 3 tables, 9,800 records, every count matches the provider's.",
  );
  await expect(activity(page, MIGRATE)).toHaveAccessibleDescription('Complete');
  await expect(activity(page, MIGRATE).getByText(`Completed by ${ADMIN.email} on `)).toBeVisible();
  await shot(page, 'migration-complete');
});

// ---- A restart mid-migration: a server of the test's own, killed and started again ----

test('a server killed mid-migration and started again carries the same migration on, and the open page follows it to the end', async ({ browser }) => {
  test.setTimeout(180_000);
  const instance = 'migrate-restart';
  const own = await ownServer(browser, instance);
  const { page } = own;
  try {
    await onboard(page, instance, 'Restart Stores');
    await upToMigration(page);
    await setFaults(page, instance, { data_page_ms: 300 });
    await page.evaluate(() => ((window as any).__samePage = true));
    await activity(page, MIGRATE).getByRole('button', { name: 'Start data migration' }).click();
    await expect(page.getByTestId('migration-state')).toHaveText('Running');
    const id = await page.getByTestId('migration').getAttribute('data-id');
    await expect.poll(() => copied(page), { timeout: 20_000 }).toBeGreaterThanOrEqual(1000);

    // SIGKILL: no goodbye, its lease left to expire.
    own.server.kill('SIGKILL');
    await new Promise((r) => own.server.once('exit', r));
    const atKill = await copied(page);
    expect(atKill).toBeLessThan(9800);
    await expect(page.getByTestId('stream-status')).toContainText('The live connection to the server was lost', { timeout: 15_000 });
    await shot(page, 'migration-server-down');

    await setFaults(page, instance, { data_page_ms: 50 });
    await own.start();
    // The page reconnects on its own and follows the same migration to its end: never reloaded,
    // never started again.
    await expect(page.getByTestId('migration-state')).toHaveText('Completed', { timeout: 90_000 });
    expect(await page.evaluate(() => (window as any).__samePage)).toBe(true);
    await expect(page.getByTestId('migration')).toHaveAttribute('data-id', id ?? '');
    await expect(page.getByTestId('stream-status')).toHaveCount(0);
    for (const [table, count] of [['impact_account', '2,400'], ['impact_success_plan', '1,800'], ['impact_engagement_request', '5,600']]) {
      await expect(row(page, table).getByTestId('stored')).toHaveText(`${count} ✓`);
    }
    await shot(page, 'migration-resumed');
  } finally {
    await own.close();
  }
});
