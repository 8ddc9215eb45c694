// A server of a test's own (beside the suite's): started, killed and started again by the test,
// or run with settings of its own, on a fresh database of the suite's backend.
import { Browser, BrowserContext, Page } from '@playwright/test';
import { spawn, execFileSync, ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { ADMIN, SIM } from './util';

const serverBin =
  process.env.IMPACT_SERVER_BIN ?? path.join(os.homedir(), '.cache/impact-connect/target/debug/impact-connect');
const siteRoot = process.env.LEPTOS_SITE_ROOT ?? path.join(__dirname, '..', '..', 'target', 'site');

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** The server binary on `port` and `db`, talking to the suite's simulator instance; `settings`
 * add to or replace its environment. */
export async function startServer(
  port: number,
  db: string,
  instance: string,
  settings: Record<string, string> = {},
): Promise<ChildProcess> {
  const sim = new URL(SIM);
  const child = spawn(serverBin, [], {
    stdio: ['ignore', 'ignore', 'ignore'],
    env: {
      ...process.env,
      LEPTOS_SITE_ADDR: `127.0.0.1:${port}`,
      LEPTOS_SITE_ROOT: siteRoot,
      DATABASE_URL: db,
      RUST_LOG: 'warn',
      IMPACT_PROVIDER_URL: `${SIM}/i/${instance}`,
      IMPACT_ALLOW_PROVIDER_HOSTS: `${sim.hostname}:${sim.port}`,
      IMPACT_PROVIDER_TIMEOUT_MS: '2000',
      // A killed server's work is taken over about this long after its last renewal.
      IMPACT_LEASE_MS: '2000',
      IMPACT_ADMIN_EMAIL: ADMIN.email,
      IMPACT_ADMIN_PASSWORD: ADMIN.password,
      ...settings,
    },
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (r.ok) return child;
    } catch {
      // Not listening yet.
    }
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error('the server did not come up within 30 s');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A fresh database on the suite's backend: a SQLite file, or, when the suite runs on PostgreSQL
 * (E2E_DATABASE_URL), a new database on that server (made with psql, as scripts/test.sh does).
 */
export function ownDatabase(dir: string): string {
  const suite = process.env.E2E_DATABASE_URL;
  if (!suite?.startsWith('postgres')) return `sqlite://${dir}/app.db?mode=rwc`;
  const name = `impact_e2e_restart_${process.pid}_${Date.now()}`;
  const base = suite.slice(0, suite.lastIndexOf('/'));
  execFileSync('psql', [`${base}/postgres`, '-q', '-c', `CREATE DATABASE ${name}`]);
  return `${base}/${name}`;
}

export function dropDatabase(db: string) {
  if (!db.startsWith('postgres')) return;
  const base = db.slice(0, db.lastIndexOf('/'));
  const name = db.slice(db.lastIndexOf('/') + 1);
  execFileSync('psql', [`${base}/postgres`, '-q', '-c', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`]);
}

export async function ownPage(browser: Browser, port: number) {
  const context = await browser.newContext({ baseURL: `http://127.0.0.1:${port}` });
  return { context, page: await context.newPage() };
}

/** A server of the test's own with its page: `start` again after a kill, `close` at the end. */
export interface OwnServer {
  server: ChildProcess;
  context: BrowserContext;
  page: Page;
  /** Starts the server again on the same port and database (after the test killed it). */
  start(): Promise<void>;
  /** Closes the page, stops the server, and drops its database. */
  close(): Promise<void>;
}

export async function ownServer(
  browser: Browser,
  instance: string,
  settings: Record<string, string> = {},
): Promise<OwnServer> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `impact-e2e-${instance}-`));
  const db = ownDatabase(dir);
  const server = await startServer(port, db, instance, settings);
  const { context, page } = await ownPage(browser, port);
  const own: OwnServer = {
    server,
    context,
    page,
    async start() {
      own.server = await startServer(port, db, instance, settings);
    },
    async close() {
      await context.close();
      own.server.kill('SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
      dropDatabase(db);
    },
  };
  return own;
}
