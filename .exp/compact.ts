import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { query, getSessionMessages } from '@anthropic-ai/claude-agent-sdk';
import { startOfflineModel } from '../src/offline-model/server.js';
import { childEnv } from '../src/claude/child-env.js';

const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'cmp-')));
const model = await startOfflineModel();
const configDir = path.join(root, 'cfg'); const tmp = path.join(root, 'tmp'); const cwd = path.join(root, 'ws');
for (const d of [configDir, tmp, cwd]) fs.mkdirSync(d, { recursive: true });
process.env.CLAUDE_CONFIG_DIR = configDir;
const env = childEnv({ configDir, tmpDir: tmp, model: { backend: 'offline', baseUrl: model.url }, sandboxOptIn: false });
const sessionId = crypto.randomUUID();
async function turn(prompt: string, resume: boolean) {
  const q = query({ prompt, options: { cwd, env, settingSources: [], permissionMode: 'default', ...(resume ? { resume: sessionId } : { sessionId }) } });
  for await (const m of q) { if (m.type === 'system' && (m as any).subtype !== 'init') console.log('system', (m as any).subtype); if (m.type === 'result') { console.log('result', m.subtype, (m as any).result?.slice(0, 80)); break; } }
  q.close();
}
await turn('Remember: my color is red', false);
await turn('Remember: my pet is cat', true);
await turn('/compact', true);
await turn('Remember: my car is blue', true);
await turn('what is my color?', true);
const plain = await getSessionMessages(sessionId, { dir: cwd });
const sys = await getSessionMessages(sessionId, { dir: cwd, includeSystemMessages: true });
console.log('plain', plain.length, plain.map((m) => m.type));
console.log('sys', sys.length, sys.map((m) => m.type + ':' + String(JSON.stringify(m.message)).slice(0, 80)));
const file = fs.readdirSync(path.join(configDir, 'projects')).map((d) => path.join(configDir, 'projects', d, `${sessionId}.jsonl`)).find((f) => fs.existsSync(f))!;
for (const l of fs.readFileSync(file, 'utf8').trim().split('\n')) { const e = JSON.parse(l); console.log(e.type, e.subtype ?? '', e.uuid?.slice(0, 8), 'p=' + (e.parentUuid?.slice(0, 8) ?? null), 'lp=' + (e.logicalParentUuid?.slice(0, 8) ?? ''), e.isCompactSummary ? 'SUMMARY' : '', JSON.stringify(e.message?.content ?? e.content ?? '').slice(0, 60)); }
await model.close();
