/**
 * @module clock
 * Millisecond timestamps that never repeat or go back within this process, so that
 * "newest activity first" has a stable order even for rows written in the same millisecond;
 * and a bounded wait.
 */
let last = 0;

export function monotonicNow(): number {
  last = Math.max(Date.now(), last + 1);
  return last;
}

/** Waits for `p` to settle, or `ms` milliseconds, whichever comes first (never throws). */
export async function bounded(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p.catch(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, ms)))]).finally(() => clearTimeout(timer));
}
