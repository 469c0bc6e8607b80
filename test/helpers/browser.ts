/**
 * Debian's Chromium driven by playwright-core, for the browser tests: skipped
 * when it is missing, unless WEFT_REQUIRE_BROWSER=1 makes that a failure.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

const CHROMIUM = process.env['WEFT_CHROMIUM'] ?? '/usr/bin/chromium';

/** Test options: `{}` when Chromium is there, a skip reason when not (a throw when it is required). */
export function browserTest(): { skip?: string } {
  if (existsSync(CHROMIUM)) return {};
  if (process.env['WEFT_REQUIRE_BROWSER'] === '1') throw new Error(`WEFT_REQUIRE_BROWSER=1 but there is no Chromium at ${CHROMIUM}`);
  return { skip: `no Chromium at ${CHROMIUM} (apt-get install chromium)` };
}

/** A headless Chromium, closed after the test. */
export async function launch(t: { after: (fn: () => unknown) => void }): Promise<Browser> {
  const browser: Browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  t.after(() => browser.close());
  return browser;
}
