/**
 * @module claude/cost
 * The CLI reports `total_cost_usd` as a running total: across the turns of one process, and a
 * resumed (or forked) session starts from the total its transcript saved in its last
 * `cost-state` entry (SDK docs on `total_cost_usd`). A turn's own cost is the difference between
 * two totals; for the first turn of a resumed process, the earlier total is that saved one, read
 * here the way the CLI reads it.
 */
import fs from 'node:fs';

const MARK = Buffer.from('"type":"cost-state"');
const CHUNK = 64 * 1024;

/** `totalCostUSD` of the last `cost-state` line of a transcript file; 0 when it has none, null when there is no file. */
export async function savedCostInFile(file: string): Promise<number | null> {
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(file, 'r');
  } catch {
    return null;
  }
  try {
    let end = (await fh.stat()).size;
    let tail = Buffer.alloc(0);
    // Backwards a chunk at a time: the entry is written when a process ends, so it is usually near the end.
    while (end > 0) {
      const start = Math.max(0, end - CHUNK);
      const chunk = Buffer.alloc(end - start);
      await fh.read(chunk, 0, chunk.length, start);
      tail = Buffer.concat([chunk, tail]);
      end = start;
      const at = tail.lastIndexOf(MARK);
      if (at < 0) continue;
      const lineStart = tail.lastIndexOf(0x0a, at);
      if (lineStart < 0 && start > 0) continue; // the line begins in an earlier chunk
      const lineEnd = tail.indexOf(0x0a, at);
      return costOf(tail.subarray(lineStart + 1, lineEnd < 0 ? tail.length : lineEnd).toString('utf8'));
    }
    return 0;
  } finally {
    await fh.close();
  }
}

/** The same, from transcript entries (a session store's copy). */
export function savedCostInEntries(entries: ReadonlyArray<{ type?: unknown; totalCostUSD?: unknown }> | null): number {
  for (let i = (entries?.length ?? 0) - 1; i >= 0; i--) {
    const e = entries![i]!;
    if (e.type === 'cost-state') return typeof e.totalCostUSD === 'number' ? e.totalCostUSD : 0;
  }
  return 0;
}

function costOf(line: string): number {
  try {
    const v = (JSON.parse(line) as { totalCostUSD?: unknown }).totalCostUSD;
    return typeof v === 'number' ? v : 0;
  } catch {
    return 0;
  }
}

/** Turns the running totals of one process into each turn's own cost. */
export class CostMeter {
  private base = 0;
  private ready: Promise<void> = Promise.resolve();

  /** The process resumes a session: its running total starts from `saved`. */
  startFrom(saved: Promise<number>): void {
    this.ready = saved.then(
      (v) => void (this.base = v),
      () => {},
    );
  }

  /** Resolves once the starting total is known. */
  whenReady(): Promise<void> {
    return this.ready;
  }

  /** The cost since the previous total (a total below it means the CLI started counting again). */
  next(total: number): number {
    const cost = total >= this.base ? total - this.base : total;
    this.base = total;
    return Math.round(cost * 1e9) / 1e9;
  }
}
