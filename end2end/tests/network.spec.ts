import { test, expect } from '@playwright/test';
import { ADMIN, hydrated, openRegistrationLink, setFaults, shot, signIn } from './util';
import { CuttableProxy } from './proxy';

const serverPort = Number(process.env.E2E_PORT ?? 3107);

test('after a network loss the page reconnects with backoff and misses nothing', async ({ page }) => {
  test.setTimeout(120_000);
  const proxy = new CuttableProxy(serverPort);
  const proxied = `http://127.0.0.1:${await proxy.start()}`;
  try {
    await signIn(page);
    await openRegistrationLink(page, 'netloss', 'Netloss Stores');
    await page.getByRole('button', { name: 'Save' }).click();
    await expect(page.getByTestId('state')).toHaveText('Validated', { timeout: 15_000 });
    // Each provider answer takes 600 ms, so onboarding is still running through the outage.
    await setFaults(page, 'netloss', { slow_ms: 600 });
    await hydrated(page);
    await page.getByRole('button', { name: 'Connect to provider' }).click();
    await page.getByLabel('Your email').fill(ADMIN.email);
    await page.getByRole('button', { name: 'Allow' }).click();
    await expect(page).toHaveURL(/\/connections\/\d+$/);
    const id = page.url().split('/').pop();

    // Watch the run through the proxy (the session cookie is the same: cookies ignore ports).
    await page.goto(`${proxied}/connections/${id}`);
    await hydrated(page);
    const messages = page.getByTestId('onboarding-messages');
    await expect(messages).toContainText('Provider onboarding started', { timeout: 15_000 });

    const cutAt = Date.now();
    proxy.cut();
    const notice = page.getByTestId('stream-status');
    await expect(notice).toContainText('Reconnecting', { timeout: 5_000 });
    await shot(page, 'network-lost');
    await page.waitForTimeout(4_500);
    proxy.restore();
    await expect(notice).toBeHidden({ timeout: 20_000 });

    await expect(messages).toContainText('Onboarding Complete', { timeout: 30_000 });
    await expect(page.getByTestId('outbound')).toHaveText('Up');
    await expect(page.getByTestId('inbound')).toHaveText('Up');
    await shot(page, 'network-recovered');
    const seen = await messages.locator('li').evaluateAll((els) =>
      els.map((e) => Number(e.getAttribute('data-seq'))),
    );
    expect(new Set(seen).size).toBe(seen.length);
    expect([...seen].sort((a, b) => a - b)).toEqual(seen);
    const texts = await messages.locator('.message').allTextContents();
    for (const m of ['Provider onboarding started', 'Syncing settings to complete onboarding', 'Onboarding Complete']) {
      expect(texts.filter((t) => t === m).length).toBe(1);
    }

    // Backoff, seen from the network: attempts during the outage came further and further apart
    // (0.5 s, 1 s, 2 s … less up to 20 % jitter), not at the browser's fixed interval.
    const attempts = proxy.refused.filter((t, i, all) => i === 0 || t - all[i - 1] > 100);
    expect(attempts.length).toBeGreaterThanOrEqual(2);
    console.log(`reconnect attempts during the outage, ms apart: ${attempts.map((t, i) => t - (i ? attempts[i - 1] : cutAt)).join(', ')}`);
    const gaps = [attempts[0] - cutAt, ...attempts.slice(1).map((t, i) => t - attempts[i])];
    for (let i = 1; i < gaps.length; i++) {
      expect(gaps[i]).toBeGreaterThan(gaps[i - 1] * 1.2);
    }

    // Nothing missed: a fresh load replays the whole log, and it is exactly what the page showed.
    await page.reload();
    await hydrated(page);
    await expect(messages).toContainText('Onboarding Complete', { timeout: 15_000 });
    const replayed = await messages.locator('li').evaluateAll((els) =>
      els.map((e) => Number(e.getAttribute('data-seq'))),
    );
    expect(replayed).toEqual(seen);
  } finally {
    await setFaults(page, 'netloss', {});
    await proxy.stop();
  }
});
