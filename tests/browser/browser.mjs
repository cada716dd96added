// Shared by the browser tests: headless Debian Chromium through playwright-core,
// with a fresh profile and no network beyond what the page asks for.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

// Opens a browser context on a fresh user-data-dir; close() removes it.
export async function openBrowser() {
  const profile = mkdtempSync(join(process.env.BBIT_TEST_TMP || tmpdir(), 'chromium-profile-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    acceptDownloads: true,
    viewport: { width: 1100, height: 800 },
  });
  context.setDefaultTimeout(20000);
  const page = context.pages()[0] || (await context.newPage());
  const events = { dialogs: [], cspViolations: [], pageErrors: [] };
  page.on('dialog', (d) => {
    events.dialogs.push(d.message());
    d.dismiss().catch(() => {});
  });
  page.on('console', (m) => {
    if (/Content[- ]Security[- ]Policy/i.test(m.text())) events.cspViolations.push(m.text());
  });
  page.on('pageerror', (e) => events.pageErrors.push(String(e)));
  return {
    context, page, events,
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

let passed = 0;
// Prints "ok - what" when cond holds, else throws.
export function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
  passed += 1;
  console.log(`ok - ${what}`);
}
export const checksPassed = () => passed;
