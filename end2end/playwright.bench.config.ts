import { defineConfig } from '@playwright/test';
import base from './playwright.config';

// The browser benchmarks (`make bench`): the same server set-up, their own folder, never part of
// `make test`. bench.sh points IMPACT_SERVER_BIN at the release build.
export default defineConfig({ ...base, testDir: './bench', timeout: 300_000 });
