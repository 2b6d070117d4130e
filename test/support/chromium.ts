/**
 * Debian's Chromium for the explorer's browser tests, driven by playwright-core. When
 * /usr/bin/chromium is missing and the test runs as root, it is installed (apt-get) first; when it
 * still cannot be had, the test is skipped saying why, or fails when LIFEBOAT_REQUIRE_ALL_BACKENDS=1
 * (CI) asks that nothing be skipped.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { TestContext } from 'node:test';
import { type Browser, chromium } from 'playwright-core';

export const CHROMIUM_PATH = '/usr/bin/chromium';

/** No background traffic: the tests also check the page asks for nothing outside the service. */
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

function installChromium(): string | undefined {
  if (process.getuid?.() !== 0) return `${CHROMIUM_PATH} is missing and the tests do not run as root to install it (apt-get install -y chromium)`;
  try {
    // Lock::Timeout: another apt-get (a second test file, the machine's own) may hold dpkg's lock for a while.
    execFileSync('sh', ['-c', 'apt-get update -qq && apt-get install -y -qq -o DPkg::Lock::Timeout=600 chromium'], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 15 * 60_000 });
    return existsSync(CHROMIUM_PATH) ? undefined : `apt-get install chromium did not install ${CHROMIUM_PATH}`;
  } catch (err) {
    return `apt-get install chromium failed: ${String((err as { stderr?: Buffer }).stderr ?? err).slice(0, 500)}`;
  }
}

/** A headless Chromium, closed after the test; undefined when the test was skipped for want of one. */
export async function launchChromium(t: TestContext): Promise<Browser | undefined> {
  const missing = existsSync(CHROMIUM_PATH) ? undefined : installChromium();
  if (missing !== undefined) {
    if (process.env.LIFEBOAT_REQUIRE_ALL_BACKENDS === '1') throw new Error(`Chromium is required (LIFEBOAT_REQUIRE_ALL_BACKENDS=1) but ${missing}.`);
    t.skip(`no Chromium: ${missing}`);
    return undefined;
  }
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: ARGS });
  t.after(() => browser.close());
  return browser;
}
