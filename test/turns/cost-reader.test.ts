import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CHUNK, CostMeter, savedCostInEntries, savedCostInFile } from '../../src/claude/cost.js';
import { makeDirs } from '../helper.js';

// The saved running total a resumed CLI starts from, read back from a transcript as the CLI does.
describe('saved cost total of a transcript', () => {
  const dirs = makeDirs();
  const id = '11111111-1111-4111-8111-111111111111';
  const file = (name: string, lines: string[], tail = '\n') => {
    const f = path.join(dirs.root, name);
    fs.writeFileSync(f, lines.join('\n') + tail);
    return f;
  };
  const cost = (total: number, sessionId = id) => JSON.stringify({ type: 'cost-state', sessionId, totalCostUSD: total });
  const msg = (n: number, size = 100) => JSON.stringify({ type: 'user', n, text: 'x'.repeat(size) });
  afterAll(() => {
    CHUNK.bytes = 64 * 1024;
  });

  it('takes the last valid entry of this session, across chunk boundaries and lines longer than a chunk', async () => {
    for (const bytes of [7, 64, 1000, 64 * 1024]) {
      CHUNK.bytes = bytes;
      const lines = [msg(1), cost(0.01), msg(2, 5000), cost(0.02), msg(3, 3000), msg(4)];
      expect(await savedCostInFile(file('a.jsonl', lines), id), `chunk ${bytes}`).toBe(0.02);
      expect(await savedCostInFile(file('b.jsonl', lines, ''), id), `chunk ${bytes}, no final newline`).toBe(0.02);
      expect(await savedCostInFile(file('c.jsonl', lines, '\r\n'), id), `chunk ${bytes}, CRLF`).toBe(0.02);
      // A torn last entry (an exit still writing), another session's entry, a mention inside a message: skipped.
      const noisy = [
        ...lines,
        cost(0.5, '22222222-2222-4222-8222-222222222222'),
        JSON.stringify({ type: 'user', text: '"type":"cost-state"' }),
        cost(0.9).slice(0, 30),
      ];
      expect(await savedCostInFile(file('d.jsonl', noisy, ''), id), `chunk ${bytes}, noise`).toBe(0.02);
      expect(await savedCostInFile(file('e.jsonl', [msg(1), msg(2, 300)]), id), `chunk ${bytes}, none`).toBe(0);
      expect(await savedCostInFile(file('f.jsonl', ['', '', cost(0.03), '', '']), id), `chunk ${bytes}, empty lines`).toBe(0.03);
    }
    expect(await savedCostInFile(path.join(dirs.root, 'missing.jsonl'), id)).toBeNull();
  });

  it('reads a store copy the same way', () => {
    const entries = [cost(0.01), cost(0.02), cost(0.7, 'other'), { type: 'cost-state', sessionId: id, totalCostUSD: 'NaN' }, { type: 'user' }].map((e) =>
      typeof e === 'string' ? JSON.parse(e) : e,
    );
    expect(savedCostInEntries(entries, id)).toBe(0.02);
    expect(savedCostInEntries(null, id)).toBe(0);
  });

  it('meters each turn from the running total', async () => {
    const m = new CostMeter();
    m.startFrom(Promise.resolve(0.05));
    await m.whenReady();
    expect([m.next(0.06), m.next(0.075), m.next(Number.NaN), m.next(0.08)]).toEqual([0.01, 0.015, 0, 0.005]);
    // The CLI started counting again (a reset): the new total is the spend since.
    expect(m.next(0.002)).toBe(0.002);
    const unknown = new CostMeter();
    unknown.startFrom(Promise.reject(new Error('store unreachable')));
    await unknown.whenReady();
    // An unknown start charges the first turn nothing rather than everything before it.
    expect([unknown.next(0.5), unknown.next(0.51)]).toEqual([0, 0.01]);
  });
});
