/** Debian's Chromium (or CHROME_PATH) driven by playwright-core, and what a page reports that a test expects none of. */
import { chromium, type Browser, type Page } from 'playwright-core';
import { chromiumPath } from '../machine.js';

export async function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath()!,
    headless: true,
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
}

/**
 * Console errors and uncaught exceptions of a page, and any browser dialog (prompt, confirm, alert: the page
 * uses none). A request the test makes fail on purpose (a dropped connection) is not counted.
 */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource|Failed to fetch|ERR_|net::/.test(m.text())) errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('dialog', (d) => {
    errors.push(`browser dialog: ${d.type()} ${d.message()}`);
    void d.dismiss();
  });
  return errors;
}

/** Types a prompt and sends it with Enter. */
export async function send(page: Page, text: string): Promise<void> {
  await page.getByLabel('Prompt').fill(text);
  await page.getByLabel('Prompt').press('Enter');
}
