/**
 * @module workspace/volume
 * With several replicas, WORKSPACE_ROOT must be one volume they all mount at the same path: a
 * session's turns run on whichever replica holds its lease, and its files (and their snapshots)
 * must be there whichever it is. The first replica writes a random id into the volume
 * (`WORKSPACE_ROOT/.volume-id`) and into the database; a replica whose WORKSPACE_ROOT holds no id,
 * or another one, is not on that volume and does not start.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';

export const VOLUME_FILE = '.volume-id';

/**
 * Checks that `root` is the cluster's workspace volume; throws a one-line reason with its fix when not.
 * `claim` is the cluster's: it answers the id set first, or sets the one given.
 */
export async function checkSharedVolume(root: string, claim: (name: string, value: string) => Promise<string>): Promise<string> {
  const file = path.join(root, VOLUME_FILE);
  const read = async () => (await fs.promises.readFile(file, 'utf8').catch(() => '')).trim();
  const here = await read();
  const offer = here || randomUUID();
  const id = await claim('workspace_volume', offer);
  if (here === id) return id;
  if (here === '' && id === offer) {
    // The cluster's first replica (or the first since this check): its volume is the one. Another replica
    // starting at the same moment on the same volume wrote its id first only if it claimed first, so
    // the file is written only when absent and read back.
    await fs.promises.writeFile(file, `${id}\n`, { flag: 'wx' }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
    if ((await read()) === id) return id;
  }
  // Another replica starting at the same moment on the same volume claimed first: its file appears shortly.
  let now = await read();
  for (let i = 0; i < 20 && now === ''; i++) {
    await new Promise((r) => setTimeout(r, 100));
    now = await read();
  }
  if (now === id) return id;
  throw new Error(
    now === ''
      ? `WORKSPACE_ROOT (${root}) is not the volume the other replicas use (it has no ${VOLUME_FILE}; theirs is ${id}): mount the shared volume there, ` +
          `or set WORKSPACE_SHARED=0 to keep each replica's files on its own disk (files, changes and rewind then see only that disk); ` +
          `a new volume that replaces theirs: echo ${id} > ${file}`
      : `WORKSPACE_ROOT (${root}) is another volume than the other replicas' (its ${VOLUME_FILE} is ${now}, theirs ${id}): mount the shared volume there, ` +
          `or set WORKSPACE_SHARED=0 to keep each replica's files on its own disk`,
  );
}
