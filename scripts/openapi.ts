/**
 * Writes the OpenAPI document (what GET /openapi.json answers) to clients/openapi.json, the file
 * the clients' types are generated from: `npm run openapi`. A test fails when it is out of date.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'css-openapi-'));
const app = await buildApp(
  loadConfig({
    DATA_DIR: path.join(dir, 'data'),
    WORKSPACE_ROOT: path.join(dir, 'workspace'),
    CLAUDE_CONFIG_DIR: path.join(dir, 'claude'),
    MODEL_BACKEND: 'offline',
    LOG_LEVEL: 'silent',
    PREWARM_SPARES: '0',
  }),
);
await app.ready();
const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json<unknown>();
await app.close();
fs.rmSync(dir, { recursive: true, force: true });
const out = path.resolve(import.meta.dirname, '../clients/openapi.json');
fs.writeFileSync(out, `${JSON.stringify(doc, null, 2)}\n`);
console.log(`wrote ${path.relative(process.cwd(), out)}`);
