import { test, expect } from '@playwright/test';
import { hydrated, openRegistrationLink, signIn } from '../tests/util';

/**
 * State change → DOM: from the server's timestamp on a connection event (taken just before its
 * commit) to the moment the page's State pill shows that version (a MutationObserver, before
 * paint). Both clocks are this machine's. Prints a `BENCH` line; asserts no timing.
 */
const RESCANS = Number(process.env.BENCH_DOM_RESCANS ?? 100);

/** RFC 3339 with microseconds → milliseconds since the epoch, keeping the fraction. */
function epochMs(at: string): number {
  const [whole, frac = '0'] = at.replace('Z', '').split('.');
  return Date.parse(`${whole}Z`) + Number(`0.${frac}`) * 1000;
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.round((sorted.length - 1) * p)];
}

test('state change to DOM latency', async ({ page, context, baseURL }) => {
  await signIn(page);
  await openRegistrationLink(page, 'latency', 'Latency Stores');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByTestId('state')).toHaveText('Validated', { timeout: 15_000 });
  await hydrated(page);
  const id = page.url().split('/').pop();

  await page.evaluate(() => {
    const w = window as any;
    w.__shown = [] as [number, number][];
    const box = document.querySelector('[data-testid=state]')!.parentElement!;
    new MutationObserver(() => {
      const v = box.querySelector('[data-testid=state]')?.getAttribute('data-version');
      w.__shown.push([Number(v), performance.timeOrigin + performance.now()]);
    }).observe(box, { childList: true, subtree: true, characterData: true, attributes: true });
  });

  const api = page.request;
  let version = (await (await api.get(`/api/connections/${id}`)).json()).version as number;
  const firstVersion = version;
  for (let i = 0; i < RESCANS; i++) {
    const r = await api.post(`/api/connections/${id}/actions`, { data: { action: 'rescan', version } });
    expect(r.ok()).toBeTruthy();
    // Awaiting validation, then Validated: wait until the server has settled and the page
    // shows the settled version.
    for (;;) {
      const c = await (await api.get(`/api/connections/${id}`)).json();
      if (c.version > version && c.state === 'validated') {
        version = c.version;
        break;
      }
      await page.waitForTimeout(20);
    }
    await page.waitForFunction(
      (v) => ((window as any).__shown as [number, number][]).some(([seen]) => seen >= v),
      version,
    );
  }

  // The events' own timestamps, from the stream as any client reads it.
  const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
  const res = await fetch(`${baseURL}/api/connections/${id}/events?after=0`, { headers: { cookie } });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  for (;;) {
    const chunk = await Promise.race([
      reader.read(),
      new Promise<null>((r) => setTimeout(() => r(null), 1000)),
    ]);
    if (!chunk || chunk.done) break;
    text += decoder.decode(chunk.value);
  }
  await reader.cancel();
  const at = new Map<number, number>();
  for (const frame of text.split('\n\n')) {
    const data = frame.split('\n').find((l) => l.startsWith('data: '));
    if (!frame.includes('event: connection') || !data) continue;
    const e = JSON.parse(data.slice(6));
    at.set(e.body.connection.version, epochMs(e.at));
  }

  const shown: [number, number][] = await page.evaluate(() => (window as any).__shown);
  const firstSeen = new Map<number, number>();
  for (const [v, t] of shown) if (!firstSeen.has(v)) firstSeen.set(v, t);
  const latencies: number[] = [];
  for (const [v, t] of firstSeen) {
    if (v > firstVersion && at.has(v)) latencies.push(t - at.get(v)!);
  }
  latencies.sort((a, b) => a - b);
  expect(latencies.length).toBeGreaterThanOrEqual(RESCANS * 2 * 0.95);
  console.log(
    `BENCH dom_latency state changes=${latencies.length} (${RESCANS} rescans, Chromium headless) ` +
      `event timestamp to State pill in the DOM: p50=${pct(latencies, 0.5).toFixed(1)} ms ` +
      `p99=${pct(latencies, 0.99).toFixed(1)} ms max=${pct(latencies, 1).toFixed(1)} ms`,
  );
});
