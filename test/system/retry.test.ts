import { describe, expect, it } from 'vitest';
import { retryOnConnectionLoss } from '../../src/storage/db.js';

describe('retryOnConnectionLoss', () => {
  it('tries again after a lost connection, and gives up on anything else or after the attempts', async () => {
    let calls = 0;
    const lost = Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' });
    expect(await retryOnConnectionLoss(async () => (++calls < 3 ? Promise.reject(lost) : 'ok'))).toBe('ok');
    expect(calls).toBe(3);

    calls = 0;
    const other = Object.assign(new Error('duplicate key'), { code: '23505' });
    await expect(retryOnConnectionLoss(async () => (++calls, Promise.reject(other)))).rejects.toBe(other);
    expect(calls).toBe(1);

    calls = 0;
    await expect(retryOnConnectionLoss(async () => (++calls, Promise.reject(new Error('Connection terminated unexpectedly'))), 3)).rejects.toThrow(
      /terminated/,
    );
    expect(calls).toBe(3);
  });
});
