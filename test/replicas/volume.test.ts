import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkSharedVolume, VOLUME_FILE } from '../../src/workspace/volume.js';
import { makeDirs } from '../helper.js';

/** The cluster's claim as PostgreSQL answers it: the first value set wins (here in memory, with a round trip's delay). */
function memoryClaim() {
  const set = new Map<string, string>();
  return async (name: string, value: string) => {
    await new Promise((r) => setTimeout(r, 5));
    if (!set.has(name)) set.set(name, value);
    return set.get(name)!;
  };
}

describe('the shared workspace volume check', () => {
  it('replicas starting at the same moment on a fresh volume agree on one id, and all start', async () => {
    const root = makeDirs().workspace;
    fs.mkdirSync(root, { recursive: true });
    const claim = memoryClaim();
    const ids = await Promise.all([1, 2, 3].map(() => checkSharedVolume(root, claim)));
    expect(new Set(ids).size).toBe(1);
    expect(fs.readFileSync(path.join(root, VOLUME_FILE), 'utf8').trim()).toBe(ids[0]);
    // Another volume (another id, or none at all) is refused.
    const other = makeDirs().workspace;
    fs.mkdirSync(other, { recursive: true });
    await expect(checkSharedVolume(other, claim)).rejects.toThrow(/is not the volume the other replicas use/);
    fs.writeFileSync(path.join(other, VOLUME_FILE), 'elsewhere\n');
    await expect(checkSharedVolume(other, claim)).rejects.toThrow(/is another volume than the other replicas'/);
  });
});
