import { defineConfig } from '@playwright/test';
import * as os from 'os';
import * as path from 'path';
import * as fs from 'fs';

// One server for the run, on its own port and a fresh database: a new SQLite file, or the
// PostgreSQL database named by E2E_DATABASE_URL (scripts/test.sh creates one for the second run).
const port = Number(process.env.E2E_PORT ?? 3107);
// The app's built-in provider simulator, on a known port so tests can inject faults.
export const simPort = Number(process.env.E2E_SIM_PORT ?? 3108);
const databaseUrl =
  process.env.E2E_DATABASE_URL ??
  `sqlite://${fs.mkdtempSync(path.join(os.tmpdir(), 'impact-e2e-'))}/e2e.db?mode=rwc`;
const serverBin =
  process.env.IMPACT_SERVER_BIN ??
  path.join(os.homedir(), '.cache/impact-connect/target/debug/impact-connect');

// Set by scripts/test.sh for the run through the cluster (scripts/cluster.sh: nginx in front of
// two replicas on PostgreSQL): the servers are already up, the browser goes to nginx.
const external = process.env.E2E_EXTERNAL_URL;

export default defineConfig({
  testDir: './tests',
  outputDir: './test-results',
  timeout: 60_000,
  // A stray test.only must not quietly shrink the suite in CI.
  forbidOnly: !!process.env.CI,
  fullyParallel: false,
  workers: 1,
  reporter: [['list']],
  use: {
    baseURL: external ?? `http://127.0.0.1:${port}`,
    screenshot: 'only-on-failure',
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ],
    },
  },
  webServer: external ? undefined : {
    command: serverBin,
    url: `http://127.0.0.1:${port}/healthz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: 'pipe',
    stderr: 'pipe',
    env: {
      LEPTOS_SITE_ADDR: `127.0.0.1:${port}`,
      DATABASE_URL: databaseUrl,
      LEPTOS_SITE_ROOT: process.env.LEPTOS_SITE_ROOT ?? path.join(__dirname, '..', 'target', 'site'),
      RUST_LOG: 'warn',
      IMPACT_SIMULATOR_ADDR: `127.0.0.1:${simPort}`,
      IMPACT_PROVIDER_TIMEOUT_MS: '2000',
      // Onboarded connections are checked every 2 s (health.spec watches them turn Down and Up).
      IMPACT_HEALTH_INTERVAL_SECONDS: '2',
      IMPACT_ADMIN_EMAIL: 'admin@example.com',
      IMPACT_ADMIN_PASSWORD: 'e2e admin password 1',
    },
  },
});
