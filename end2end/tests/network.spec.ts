import { test, expect } from '@playwright/test';
import {
  ADMIN, field, hydrated, messageSeqs, messageTexts, onboardingMessages, openRegistrationLink, setFaults, shot, signIn,
} from './util';
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
    await expect(field(page, 'State')).toHaveText('Validated', { timeout: 15_000 });
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
    const messages = onboardingMessages(page);
    await expect(messages).toContainText('Provider onboarding started', { timeout: 15_000 });

    const cutAt = Date.now();
    proxy.cut();
    const notice = page.getByRole('status').filter({ hasText: 'The live connection to the server was lost' });
    await expect(notice).toContainText('Reconnecting', { timeout: 20_000 });
    await shot(page, 'network-lost');
    // Keep the network down until the page has tried three times and says it is waiting to try
    // a fourth (0.5 s, 1 s and 2 s apart, less jitter): enough attempts to see the backoff grow.
    await expect(notice).toContainText('(attempt 4)', { timeout: 20_000 });
    proxy.restore();
    await expect(notice).toBeHidden({ timeout: 20_000 });

    await expect(messages).toContainText('Onboarding Complete', { timeout: 30_000 });
    await expect(field(page, 'Outbound status')).toHaveText('Up');
    await expect(field(page, 'Inbound status')).toHaveText('Up');
    await shot(page, 'network-recovered');
    // No event twice and none out of order: checked on the events' sequence numbers (see messageSeqs).
    const seen = await messageSeqs(messages);
    expect(new Set(seen).size).toBe(seen.length);
    expect([...seen].sort((a, b) => a - b)).toEqual(seen);
    const texts = await messageTexts(messages);
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
    expect(await messageSeqs(messages)).toEqual(seen);
    expect(await messageTexts(messages)).toEqual(texts);
  } finally {
    await setFaults(page, 'netloss', {});
    await proxy.stop();
  }
});
