import { test, expect, Page } from '@playwright/test';
import AxeBuilder from '@axe-core/playwright';
import { field, hydrated, openRegistrationLink, screenPath, setFaults, signIn } from './util';

// Every page, at a desktop and a phone width, in the light and the dark colour scheme: axe-core
// finds no violation (WCAG 2.x A and AA rules), nothing scrolls sideways, the page's title says
// what it shows, and a screenshot is kept for a person to look at.
const WIDTHS = [1280, 375] as const;
const SCHEMES = ['light', 'dark'] as const;

type Visit = { name: string; path: string; title: RegExp | string; signedIn: boolean };

async function checkPage(page: Page, visit: Visit) {
  for (const width of WIDTHS) {
    for (const scheme of SCHEMES) {
      await page.setViewportSize({ width, height: 800 });
      await page.emulateMedia({ colorScheme: scheme });
      await page.goto(visit.path);
      await hydrated(page);
      await expect.soft(page).toHaveTitle(visit.title);
      // Let the live parts (event streams, suspended data) settle before judging the page.
      await page.waitForLoadState('networkidle', { timeout: 2_000 }).catch(() => undefined);
      const results = await new AxeBuilder({ page })
        .withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'])
        .analyze();
      const found = results.violations.map(
        (v) => `${v.id} (${v.impact}): ${v.help}\n    ${v.nodes.map((n) => n.target.join(' ')).join('\n    ')}`,
      );
      expect.soft(found, `${visit.name} at ${width} px, ${scheme}`).toEqual([]);
      const sideways = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect.soft(sideways, `${visit.name} at ${width} px scrolls sideways by ${sideways} px`).toBeLessThanOrEqual(0);
      // Nor does a table inside its card: a row is read whole, without scrolling it.
      const cut = await page.evaluate(() =>
        Array.from(document.querySelectorAll('.table-scroll'))
          .filter((t) => t.scrollWidth - t.clientWidth > 1)
          .map((t) => `${t.getAttribute('aria-label')}: ${t.scrollWidth - t.clientWidth} px hidden`));
      expect.soft(cut, `${visit.name} at ${width} px: a table scrolls sideways inside its card`).toEqual([]);
      // The chart's hour names are each readable: no two shown ones overlap.
      const crowded = await page.evaluate(() => {
        const boxes = Array.from(document.querySelectorAll('ol.chart .hour'))
          .filter((h) => getComputedStyle(h).visibility === 'visible')
          .map((h) => ({ text: h.textContent, box: h.getBoundingClientRect() }));
        return boxes.slice(1)
          .filter((b, i) => b.box.left < boxes[i].box.right)
          .map((b, i) => `${boxes[i].text}/${b.text}`);
      });
      expect.soft(crowded, `${visit.name} at ${width} px: the chart's hour names overlap`).toEqual([]);
      await page.screenshot({ path: screenPath(`a11y-${visit.name}-${width}-${scheme}`), fullPage: true });
    }
  }
  // Back to the suite's usual window for whatever comes next.
  await page.setViewportSize({ width: 1280, height: 720 });
  await page.emulateMedia({ colorScheme: 'light' });
}

test('every page passes axe-core with no sideways scroll at 1280 and 375 px, light and dark, and is titled for what it shows', async ({ page }) => {
  test.setTimeout(360_000);
  // Signed out first: the sign-in page.
  await checkPage(page, { name: 'login', path: '/login', title: 'Sign in · Impact Connect', signedIn: false });
  // The first-start page (its form refuses without the one-time token; the page itself renders).
  await checkPage(page, {
    name: 'setup', path: '/setup', title: 'Create the first administrator · Impact Connect', signedIn: false,
  });

  await signIn(page);
  // A validated connection and one whose validation failed (the dashboard then lists issues).
  await openRegistrationLink(page, 'a11y-ok', 'Accessible Stores');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page).toHaveURL(/\/connections\/\d+$/);
  await expect(field(page, 'State')).toHaveText('Validated', { timeout: 15_000 });
  const okPath = new URL(page.url()).pathname;

  await openRegistrationLink(page, 'a11y-bad', 'Failing Stores');
  await setFaults(page, 'a11y-bad', { bad_credentials: true });
  const connectPath = new URL(page.url()).pathname + new URL(page.url()).search;
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page).toHaveURL(/\/connections\/\d+$/);
  await expect(field(page, 'State')).toHaveText('Validation failed', { timeout: 15_000 });
  const badPath = new URL(page.url()).pathname;

  const visits: Visit[] = [
    { name: 'home', path: '/', title: 'Connect with Impact IDI · Impact Connect', signedIn: true },
    { name: 'guided-setup', path: '/guided-setup', title: 'Guided Setup · Impact Connect', signedIn: true },
    { name: 'connections', path: '/connections', title: 'Connections · Impact Connect', signedIn: true },
    { name: 'connection', path: okPath, title: 'Provider connection · Accessible Stores · Impact Connect', signedIn: true },
    { name: 'connection-failed', path: badPath, title: 'Provider connection · Failing Stores · Impact Connect', signedIn: true },
    { name: 'health', path: `${badPath}/health`, title: 'Health Dashboard · Failing Stores · Impact Connect', signedIn: true },
    { name: 'connect-used-link', path: connectPath, title: 'This registration link has already been used · Impact Connect', signedIn: true },
    { name: 'registrations', path: '/registrations', title: 'Instance registration · Impact Connect', signedIn: true },
    { name: 'outbox', path: '/outbox', title: 'Outbox · Impact Connect', signedIn: true },
    { name: 'users', path: '/users', title: 'Users · Impact Connect', signedIn: true },
    { name: 'audit', path: '/audit', title: 'Audit · Impact Connect', signedIn: true },
    { name: 'not-found', path: '/no-such-page', title: 'Page not found · Impact Connect', signedIn: true },
    { name: 'dashboard-resolution', path: '/health', title: 'Health Dashboard · Impact Connect', signedIn: true },
    { name: 'dashboard-connections', path: '/health?tab=connections', title: 'Health Dashboard · Impact Connect', signedIn: true },
    { name: 'dashboard-suites', path: '/health?tab=suites', title: 'Health Dashboard · Impact Connect', signedIn: true },
    { name: 'issue', path: `${badPath}/issues/credentials`, title: 'Connection credentials are accepted · Failing Stores · Impact Connect', signedIn: true },
    { name: 'knowledge-article', path: '/help/KB-IC-1001', title: 'KB-IC-1001 Provider URL requirements · Impact Connect', signedIn: true },
  ];
  for (const visit of visits) await checkPage(page, visit);

  // A new record's form (a fresh link), before Save.
  await openRegistrationLink(page, 'a11y-new', 'New Stores');
  const fresh = new URL(page.url());
  await checkPage(page, {
    name: 'connect-new', path: fresh.pathname + fresh.search,
    title: 'Provider connection · New Stores · Impact Connect', signedIn: true,
  });
});

test('at phone width the navigation folds behind Menu, opens on demand, and folds again after a link', async ({ page }) => {
  await signIn(page);
  await page.setViewportSize({ width: 375, height: 800 });
  await page.goto('/connections');
  await hydrated(page);
  const menu = page.getByRole('button', { name: 'Menu' });
  const nav = page.getByRole('navigation', { name: 'Main' });
  await expect(menu).toHaveAttribute('aria-expanded', 'false');
  await expect(nav.getByRole('link', { name: 'Guided Setup' })).toBeHidden();
  await menu.click();
  await expect(menu).toHaveAttribute('aria-expanded', 'true');
  await expect(nav.getByRole('link', { name: 'Guided Setup' })).toBeVisible();
  await expect(page.getByRole('banner').getByRole('button', { name: 'Sign out' })).toBeVisible();
  await page.screenshot({ path: screenPath('a11y-menu-open-375') });
  await nav.getByRole('link', { name: 'Guided Setup' }).click();
  await expect(page).toHaveURL(/\/guided-setup$/);
  await expect(menu).toHaveAttribute('aria-expanded', 'false');
  await expect(nav.getByRole('link', { name: 'Connections' })).toBeHidden();
  // A wide window shows the links with no Menu button.
  await page.setViewportSize({ width: 1280, height: 720 });
  await expect(menu).toBeHidden();
  await expect(nav.getByRole('link', { name: 'Connections' })).toBeVisible();
});

test('a refused value is told at its field, tied to it and focused; an action moves focus to its outcome', async ({ page }) => {
  await signIn(page);
  await page.goto('/registrations');
  await hydrated(page);
  await page.getByLabel('Named contact email').fill('grace@example.com');
  const company = page.getByLabel('Company', { exact: true });
  // Not empty, so the browser lets it through; the server's rule refuses it.
  await company.fill('   ');
  await page.getByRole('button', { name: 'Initiate registration' }).click();
  await expect(company).toHaveAttribute('aria-invalid', 'true');
  await expect(company).toHaveAccessibleDescription(/company/i);
  await expect(company).toBeFocused();
  // Told once, at the field: no second copy in a banner.
  await expect(page.getByTestId('error-banner')).toHaveCount(0);
  await page.screenshot({ path: screenPath('a11y-field-error') });
  await company.fill('Focus Stores');
  await page.getByRole('button', { name: 'Initiate registration' }).click();
  const issued = page.getByRole('status').filter({ hasText: 'Registration initiated' });
  await expect(issued).toBeFocused();
  await expect(company).toHaveAttribute('aria-invalid', 'false');
  await expect(company).not.toHaveAttribute('aria-describedby');

  // On the Provider connection form, Save and Rescan leave focus on the State they changed.
  await openRegistrationLink(page, 'a11y-focus', 'Focus Stores');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page).toHaveURL(/\/connections\/\d+$/);
  await hydrated(page);
  await expect(field(page, 'State')).toHaveText('Validated', { timeout: 15_000 });
  await page.getByRole('button', { name: 'Rescan' }).click();
  await expect(field(page, 'State')).toBeFocused();
});
