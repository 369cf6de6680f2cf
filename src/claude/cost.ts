/**
 * @module claude/cost
 * The CLI reports `total_cost_usd` as a running total: across the turns of one process, and a
 * resumed session starts from the total its transcript saved in its last `cost-state` entry for
 * that session (SDK docs on `total_cost_usd`). A turn's own cost is the difference between two
 * totals; for the first turn of a resumed process, the earlier total is that saved one, read here
 * the way the CLI reads it.
 */
import fs from 'node:fs';

/** Text every `cost-state` entry's JSON contains. */
export const COST_STATE_MARK = '"cost-state"';
/** Bytes read at a time (a parameter for tests). */
export const CHUNK = { bytes: 64 * 1024 };

/** The saved total an entry carries, or null when it is not a valid `cost-state` of this session. */
function savedTotal(e: Record<string, unknown>, sessionId: string): number | null {
  if (e.type !== 'cost-state') return null;
  if (e.sessionId !== undefined && e.sessionId !== sessionId) return null;
  return typeof e.totalCostUSD === 'number' && Number.isFinite(e.totalCostUSD) && e.totalCostUSD >= 0 ? e.totalCostUSD : null;
}

/**
 * The total of the last valid `cost-state` line of a transcript file; 0 when it has none, null
 * when there is no file. Reads backwards a chunk at a time (the entry is written when a process
 * ends, so it is usually near the end), each byte once.
 */
export async function savedCostInFile(file: string, sessionId: string): Promise<number | null> {
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(file, 'r');
  } catch {
    return null;
  }
  try {
    let end = (await fh.stat()).size;
    /** The start of a line whose beginning is in an earlier chunk, in file order. */
    let partial: Buffer[] = [];
    while (end > 0) {
      const start = Math.max(0, end - CHUNK.bytes);
      const chunk = Buffer.alloc(end - start);
      await fh.read(chunk, 0, chunk.length, start);
      end = start;
      // (A negative offset would search from the end of the chunk again.)
      const newlineBefore = (at: number) => (at <= 0 ? -1 : chunk.lastIndexOf(0x0a, at - 1));
      let lineEnd = chunk.length;
      for (let nl = newlineBefore(lineEnd); ; nl = newlineBefore(lineEnd)) {
        if (nl < 0 && start > 0) {
          // The line goes on in the chunk before this one.
          partial = [chunk.subarray(0, lineEnd), ...partial];
          break;
        }
        const line = Buffer.concat([chunk.subarray(nl + 1, lineEnd), ...partial]);
        partial = [];
        const total = line.includes(COST_STATE_MARK) ? parse(line, sessionId) : null;
        if (total !== null) return total;
        if (nl < 0) break;
        lineEnd = nl;
      }
    }
    return 0;
  } finally {
    await fh.close();
  }
}

function parse(line: Buffer, sessionId: string): number | null {
  try {
    const e = JSON.parse(line.toString('utf8')) as unknown;
    return e && typeof e === 'object' ? savedTotal(e as Record<string, unknown>, sessionId) : null;
  } catch {
    return null; // a line torn by a write in progress, or not JSON: look further back
  }
}

/** The same, from transcript entries (a session store's copy). */
export function savedCostInEntries(entries: ReadonlyArray<Record<string, unknown>> | null, sessionId: string): number {
  for (let i = (entries?.length ?? 0) - 1; i >= 0; i--) {
    const total = savedTotal(entries![i]!, sessionId);
    if (total !== null) return total;
  }
  return 0;
}

/** Turns the running totals of one process into each turn's own cost. */
export class CostMeter {
  private base = 0;
  /** The starting total could not be read: the first turn's share of the total is unknown. */
  private unknownBase = false;
  private ready: Promise<void> = Promise.resolve();

  /** The process resumes a session: its running total starts from `saved`. */
  startFrom(saved: Promise<number>): void {
    this.ready = saved.then(
      (v) => void (this.base = v),
      () => void (this.unknownBase = true),
    );
  }

  /** Resolves once the starting total is known (or known to be unknown). */
  whenReady(): Promise<void> {
    return this.ready;
  }

  /**
   * The cost since the previous total. A total below it means the CLI started counting again; an
   * unknown starting total charges the first turn nothing rather than everything before it.
   */
  next(total: number): number {
    if (!Number.isFinite(total) || total < 0) return 0;
    const cost = this.unknownBase ? 0 : total >= this.base ? total - this.base : total;
    this.unknownBase = false;
    this.base = total;
    return Math.round(cost * 1e9) / 1e9;
  }
}
