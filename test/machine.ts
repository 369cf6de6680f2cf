/**
 * What the suite needs from this machine, found where it usually is. Read by test/global-setup.ts
 * (which stops the run with a one-line fix when something is missing) and by the tests that use it.
 */
import fs from 'node:fs';
import path from 'node:path';

/** A Chromium to drive: `CHROME_PATH`, else the usual places of Debian's and others' packages. */
export function chromiumPath(): string | null {
  const candidates = [process.env.CHROME_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/lib/chromium/chromium', '/snap/bin/chromium', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable'];
  return candidates.find((p): p is string => Boolean(p) && fs.existsSync(p!)) ?? null;
}

/** Whether a program is on PATH. */
export const onPath = (bin: string) => (process.env.PATH ?? '').split(':').some((d) => d && fs.existsSync(path.join(d, bin)));
