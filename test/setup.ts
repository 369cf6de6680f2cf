import fs from 'node:fs';
import { afterAll } from 'vitest';
import { dropDatabases, madeDirs } from './helper.js';

// Leave no temporary folders (databases, transcripts, workspaces) behind a test file.
afterAll(async () => {
  for (const d of madeDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  await dropDatabases();
});
