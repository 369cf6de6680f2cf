import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { folderEnv, makeDirs, startServer } from '../helper.js';

const MCP = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'mcp-server.mjs');
const SECRETS = ['agent-env-secret-5f1c', 'mcp-env-secret-8a2d', 'mcp-header-secret-3b9e', 'session-secret-7c4a'];

/** Every process's command line on this machine (a secret must not be on one: others can read them). */
function commandLines(): string {
  let all = '';
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      all += fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').replace(/\0/g, ' ') + '\n';
    } catch {
      // gone meanwhile
    }
  }
  return all;
}

describe('secrets are write-only: never in a response, an event, a log line or a command line', () => {
  let stop: (() => void) | undefined;
  afterAll(() => stop?.());

  it('an agent and a session with secret env, MCP env and MCP headers run a turn; the secrets appear nowhere', async () => {
    const dirs = makeDirs();
    const srv = await startServer({
      ...(await folderEnv(dirs)),
      LOG_LEVEL: 'trace',
      MCP_ALLOWED_COMMANDS: MCP,
      AGENT_ENV_ALLOWED: 'API_TOKEN,PLAIN,FIXTURE_TOKEN,OWN',
      SANDBOX_NETWORK: 'mcp.example.com',
      PREWARM_SPARES: '0',
    });
    stop = () => srv.child.kill('SIGKILL');
    let seen = '';
    const api = async (method: string, url: string, body?: unknown, accept = 'application/json') => {
      const r = await fetch(`${srv.base}${url}`, {
        method,
        headers: { accept, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await r.text();
      seen += `${method} ${url} ${r.status}\n${text}\n`;
      return { status: r.status, text, json: () => JSON.parse(text) };
    };

    const agent = (
      await api('POST', '/v1/agents', {
        name: 'with secrets',
        env: { API_TOKEN: { value: SECRETS[0], secret: true }, PLAIN: 'visible' },
        mcp_servers: { fixture: { command: MCP, env: { FIXTURE_TOKEN: { value: SECRETS[1], secret: true } } } },
        allowed_tools: ['mcp__fixture'],
      })
    ).json();
    expect(agent.env).toEqual({ API_TOKEN: { secret: true }, PLAIN: 'visible' });
    const remote = (
      await api('POST', '/v1/agents', {
        name: 'remote',
        mcp_servers: { r: { type: 'http', url: 'https://mcp.example.com/mcp', headers: { Authorization: { value: SECRETS[2], secret: true } } } },
      })
    ).json();
    await api('PATCH', `/v1/agents/${remote.agent_id}`, { description: 'v2' });
    const session = (await api('POST', '/v1/sessions', { agent_id: agent.agent_id, env: { OWN: { value: SECRETS[3], secret: true } } })).json();
    // A streamed turn that uses the MCP server (its secret reaches the server's env: checked by agents.test.ts).
    const streamed = await api('POST', `/v1/sessions/${session.session_id}/turns`, { prompt: '[[tool:mcp__fixture__add {"a":1,"b":1}]]' }, 'text/event-stream');
    expect(streamed.text).toContain('sum: 2');
    // The warm CLI process and its MCP server are alive now: their command lines hold no secret.
    const argv = commandLines();
    expect(argv).toContain('mcp-server.mjs');
    for (const s of SECRETS) expect(argv).not.toContain(s);

    for (const url of [
      `/v1/agents/${agent.agent_id}`,
      `/v1/agents/${remote.agent_id}`,
      `/v1/agents/${remote.agent_id}/versions`,
      `/v1/agents/${remote.agent_id}/versions/1`,
      '/v1/agents',
      `/v1/sessions/${session.session_id}`,
      '/v1/sessions',
      `/v1/sessions/${session.session_id}/turns`,
      `/v1/sessions/${session.session_id}/messages`,
    ]) {
      expect((await api('GET', url)).status).toBe(200);
    }
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 1500);
    const events = await fetch(`${srv.base}/v1/sessions/${session.session_id}/events`, { headers: { accept: 'text/event-stream' }, signal: ac.signal })
      .then(async (r) => {
        let text = '';
        const reader = r.body!.getReader();
        const decoder = new TextDecoder();
        try {
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            text += decoder.decode(value);
          }
        } catch {
          // aborted: the log so far is what we read
        }
        return text;
      })
      .catch(() => '');
    expect(events).toContain('"subtype":"init"');
    seen += events;
    srv.child.kill('SIGTERM');
    await new Promise((r) => srv.child.once('exit', r));
    const log = srv.log();
    expect(log.length).toBeGreaterThan(1000); // trace-level logs were written (the check below reads something)
    for (const s of SECRETS) {
      expect(seen.includes(s), `${s} in a response or event`).toBe(false);
      expect(log.includes(s), `${s} in the server's log`).toBe(false);
    }
  });
});
