/**
 * @module clock
 * Millisecond timestamps that never repeat or go back within this process, so that
 * "newest activity first" has a stable order even for rows written in the same millisecond.
 */
let last = 0;

export function monotonicNow(): number {
  last = Math.max(Date.now(), last + 1);
  return last;
}
