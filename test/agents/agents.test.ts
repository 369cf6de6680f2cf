import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { call, makeDirs, runApproving, startApp, useApp, waitForTurn } from '../helper.js';
import { isClosedAddress } from '../../src/network.js';

const MCP = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'mcp-server.mjs');
const keysEnv = { API_KEYS: 'alice:key-alice-0123456789,bob:key-bob-0123456789,root:key-root-0123456789', ADMIN_USERS: 'root' };
const ALICE = { authorization: 'Bearer key-alice-0123456789' };
const BOB = { authorization: 'Bearer key-bob-0123456789' };
const ROOT = { authorization: 'Bearer key-root-0123456789' };

describe('agents: the resource (versions, archive, ownership, checks)', () => {
  const t = useApp({
    env: {
      ...keysEnv,
      MCP_ALLOWED_COMMANDS: `${MCP},${MCP} --fixed-args`,
      SANDBOX_NETWORK: 'mcp.example.com',
      AGENT_ENV_ALLOWED: 'TEAM_*,PLAIN,TOKEN,FIXTURE_TOKEN',
    },
  });

  it('create, read, update (a new version each time, old ones readable), list, archive and restore', async () => {
    const made = await call(
      t.app,
      'POST',
      '/v1/agents',
      { name: 'reviewer', description: 'reads code', append_system_prompt: 'Be brief.', max_turns: 5, allowed_tools: ['Read'], model: 'claude-x-1' },
      ALICE,
    );
    expect(made.status).toBe(201);
    expect(made.body).toMatchObject({
      name: 'reviewer',
      version: 1,
      latest_version: 1,
      user_id: 'alice',
      shared: false,
      archived: false,
      append_system_prompt: 'Be brief.',
      max_turns: 5,
      allowed_tools: ['Read'],
      model: 'claude-x-1',
      permission_mode: null,
    });
    const id = made.body.agent_id;
    const v2 = await call(t.app, 'PATCH', `/v1/agents/${id}`, { max_turns: 9, append_system_prompt: null, expected_version: 1 }, ALICE);
    expect(v2.status).toBe(200);
    expect(v2.body).toMatchObject({ version: 2, latest_version: 2, max_turns: 9, name: 'reviewer', allowed_tools: ['Read'] });
    expect(v2.body.append_system_prompt).toBeUndefined();
    // The old version is unchanged and readable; the agent reads as its newest.
    expect((await call(t.app, 'GET', `/v1/agents/${id}/versions/1`, undefined, ALICE)).body).toMatchObject({
      version: 1,
      max_turns: 5,
      append_system_prompt: 'Be brief.',
    });
    expect((await call(t.app, 'GET', `/v1/agents/${id}`, undefined, ALICE)).body).toMatchObject({ version: 2, max_turns: 9 });
    const versions = (await call(t.app, 'GET', `/v1/agents/${id}/versions?limit=1`, undefined, ALICE)).body;
    expect(versions.versions.map((v: any) => v.version)).toEqual([2]);
    const older = (await call(t.app, 'GET', `/v1/agents/${id}/versions?limit=1&cursor=${versions.next_cursor}`, undefined, ALICE)).body;
    expect([older.versions.map((v: any) => v.version), older.next_cursor]).toEqual([[1], null]);
    // An update made against a version that is no longer the newest is refused, and writes nothing.
    const stale = await call(t.app, 'PATCH', `/v1/agents/${id}`, { max_turns: 1, expected_version: 1 }, ALICE);
    expect([stale.status, stale.body.error.code]).toEqual([409, 'AGENT_CHANGED']);
    expect((await call(t.app, 'GET', `/v1/agents/${id}`, undefined, ALICE)).body.version).toBe(2);
    expect((await call(t.app, 'GET', `/v1/agents/${id}/versions/3`, undefined, ALICE)).status).toBe(404);

    expect((await call(t.app, 'GET', '/v1/agents', undefined, ALICE)).body.agents.map((a: any) => a.agent_id)).toContain(id);
    const archived = await call(t.app, 'DELETE', `/v1/agents/${id}`, undefined, ALICE);
    expect(archived.body).toMatchObject({ archived: true, version: 2 });
    expect((await call(t.app, 'GET', '/v1/agents', undefined, ALICE)).body.agents.map((a: any) => a.agent_id)).not.toContain(id);
    expect((await call(t.app, 'GET', '/v1/agents?archived=true', undefined, ALICE)).body.agents.map((a: any) => a.agent_id)).toContain(id);
    const refused = await call(t.app, 'POST', '/v1/sessions', { agent_id: id }, ALICE);
    expect([refused.status, refused.body.error.code]).toEqual([400, 'INVALID_REQUEST']);
    expect((await call(t.app, 'POST', `/v1/agents/${id}/restore`, undefined, ALICE)).body.archived).toBe(false);
    const s = await call(t.app, 'POST', '/v1/sessions', { agent_id: id, agent_version: 1 }, ALICE);
    expect(s.status).toBe(201);
    expect(s.body).toMatchObject({ agent: { agent_id: id, version: 1 }, model: 'claude-x-1', options: { max_turns: 5, append_system_prompt: 'Be brief.' } });
  });

  it("another user's agent is a 404 to read, change or use; a shared one (admins only) is readable and usable by all, changeable by admins", async () => {
    const mine = (await call(t.app, 'POST', '/v1/agents', { name: 'private' }, ALICE)).body;
    for (const [m, url, body] of [
      ['GET', `/v1/agents/${mine.agent_id}`, undefined],
      ['PATCH', `/v1/agents/${mine.agent_id}`, { name: 'taken' }],
      ['DELETE', `/v1/agents/${mine.agent_id}`, undefined],
      ['GET', `/v1/agents/${mine.agent_id}/versions`, undefined],
      ['POST', '/v1/sessions', { agent_id: mine.agent_id }],
    ] as const) {
      const r = await call(t.app, m, url, body, BOB);
      expect([m, url, r.status, r.body.error.code]).toEqual([m, url, 404, 'AGENT_NOT_FOUND']);
    }
    expect((await call(t.app, 'GET', '/v1/agents', undefined, BOB)).body.agents.map((a: any) => a.agent_id)).not.toContain(mine.agent_id);

    const notAdmin = await call(t.app, 'POST', '/v1/agents', { name: 'x', shared: true }, BOB);
    expect([notAdmin.status, notAdmin.body.error.details.field]).toEqual([400, 'body.shared']);
    const shared = (
      await call(t.app, 'POST', '/v1/agents', { name: 'team', shared: true, env: { TEAM_TOKEN: { value: 'team-secret-42', secret: true } } }, ROOT)
    ).body;
    expect(shared).toMatchObject({ shared: true, env: { TEAM_TOKEN: { secret: true } } });
    const seen = await call(t.app, 'GET', `/v1/agents/${shared.agent_id}`, undefined, BOB);
    expect(seen.status).toBe(200);
    expect(seen.raw).not.toContain('team-secret-42');
    expect((await call(t.app, 'GET', '/v1/agents?mine=true', undefined, BOB)).body.agents.map((a: any) => a.agent_id)).not.toContain(shared.agent_id);
    expect((await call(t.app, 'PATCH', `/v1/agents/${shared.agent_id}`, { name: 'mine now' }, BOB)).status).toBe(404);
    const used = await call(t.app, 'POST', '/v1/sessions', { agent_id: shared.agent_id }, BOB);
    expect(used.status).toBe(201);
    expect(used.body.options.env).toEqual({ TEAM_TOKEN: { secret: true } });
    expect(used.raw).not.toContain('team-secret-42');
    // An admin's change keeps the secret it does not restate ({secret: true} without a value).
    const v2 = await call(
      t.app,
      'PATCH',
      `/v1/agents/${shared.agent_id}`,
      { env: { TEAM_TOKEN: { secret: true }, PLAIN: 'p' }, allowed_tools: ['Bash'], disallowed_tools: ['WebSearch'], mcp_servers: { fx: { command: MCP } } },
      ROOT,
    );
    expect(v2.body).toMatchObject({ version: 2, env: { TEAM_TOKEN: { secret: true }, PLAIN: 'p' } });

    // A session of a shared agent cannot take its secrets or tools elsewhere, nor lift its limits, nor go back to an old version.
    for (const [body, field] of [
      [{ env: { TEAM_TOKEN: { secret: true } } }, 'body.env.TEAM_TOKEN'],
      [{ env: { TEAM_TOKEN: 'mine' } }, 'body.env.TEAM_TOKEN'],
      [{ mcp_servers: { fx: { command: MCP, args: ['--fixed-args'] } } }, 'body.mcp_servers.fx'],
      [{ allowed_tools: ['Bash', 'Write'] }, 'body.allowed_tools'],
      [{ agent_version: 1 }, 'body.agent_version'],
    ] as const) {
      const r = await call(t.app, 'POST', '/v1/sessions', { agent_id: shared.agent_id, ...body }, BOB);
      expect([field, r.status, r.body.error.details?.field]).toEqual([field, 400, field]);
    }
    const limited = await call(t.app, 'POST', '/v1/sessions', { agent_id: shared.agent_id, disallowed_tools: ['WebFetch'] }, BOB);
    expect(limited.body.options.disallowed_tools).toEqual(['WebSearch', 'WebFetch']);
    // Nor can a session keep a secret by name at all (only the agent's own updates can).
    const keep = await call(t.app, 'POST', '/v1/sessions', { env: { TOKEN: { secret: true } } }, BOB);
    expect([keep.status, keep.body.error.details.field]).toEqual([400, 'body.env.TOKEN']);
    // The shared secret is the CLI's: a command run in the sandbox for Bob does not see it.
    const s = (await call(t.app, 'POST', '/v1/sessions', { agent_id: shared.agent_id }, BOB)).body;
    const r = await runApproving(t, s.session_id, '[[bash:echo "tok=[$TEAM_TOKEN] plain=[$PLAIN]"]]', { headers: BOB });
    expect(r.result).toBe('The command ran. Output: tok=[] plain=[p]');
  });

  it("options are checked against the operator's policy: each refusal is a 400 naming the field, and writes nothing", async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ mcp_servers: { x: { command: '/bin/sh', args: ['-c', 'id'] } } }, 'body.mcp_servers.x.command'],
      [{ mcp_servers: { x: { type: 'http', url: 'http://127.0.0.1:5432/' } } }, 'body.mcp_servers.x.url'],
      [{ mcp_servers: { x: { type: 'sse', url: 'https://user:pw@mcp.example.com/sse' } } }, 'body.mcp_servers.x.url'],
      [{ mcp_servers: { x: { type: 'http', url: 'http://mcp.example.com/mcp' } } }, 'body.mcp_servers.x.url'],
      [{ mcp_servers: { x: { command: MCP, args: ['--other'], env: { PYTHONUSERBASE: '/tmp/x' } } } }, 'body.mcp_servers.x.env.PYTHONUSERBASE'],
      [{ mcp_servers: { x: { command: 'node', args: [MCP] } } }, 'body.mcp_servers.x.command'],
      [{ env: { NOT_LISTED: 'x' } }, 'body.env.NOT_LISTED'],
      [{ env: Object.fromEntries(['A', 'B', 'C', 'D', 'E', 'F'].map((k) => [`TEAM_${k}`, '中'.repeat(16_000)])) }, 'body.env'],
      [{ env: { GIT_SSH_COMMAND: 'x' } }, 'body.env.GIT_SSH_COMMAND'],
      [{ output_schema: { type: 'object', description: '中'.repeat(30_000) } }, 'body.output_schema'],
      [{ output_schema: JSON.parse('{"a":'.repeat(40) + '1' + '}'.repeat(40)) }, 'body.output_schema'],
      [{ mcp_servers: { x: { command: MCP, env: { NODE_OPTIONS: '--require /tmp/evil.js' } } } }, 'body.mcp_servers.x.env.NODE_OPTIONS'],
      [{ env: { ANTHROPIC_BASE_URL: 'http://evil.example/' } }, 'body.env.ANTHROPIC_BASE_URL'],
      [{ env: { LD_PRELOAD: '/tmp/x.so' } }, 'body.env.LD_PRELOAD'],
      [{ env: { PATH: '/tmp' } }, 'body.env.PATH'],
      [{ env: { TOKEN: { secret: true } } }, 'body.env.TOKEN'],
      [{ output_schema: { type: 'object', properties: { a: { type: 'no-such-type' } } } }, 'body.output_schema'],
    ];
    const before = (await call(t.app, 'GET', '/v1/agents?limit=200', undefined, ALICE)).body.agents.length;
    for (const [body, field] of cases) {
      const r = await call(t.app, 'POST', '/v1/agents', { name: 'bad', ...body }, ALICE);
      expect([field, r.status, r.body.error.code, r.body.error.details?.field]).toEqual([field, 400, 'INVALID_REQUEST', field]);
      // The same checks hold for a session's own options.
      const s = await call(t.app, 'POST', '/v1/sessions', body, ALICE);
      expect([field, s.status]).toEqual([field, 400]);
    }
    expect((await call(t.app, 'GET', '/v1/agents?limit=200', undefined, ALICE)).body.agents.length).toBe(before);
    // Allowed: the operator's command, a host the network policy lists.
    const ok = await call(
      t.app,
      'POST',
      '/v1/agents',
      {
        name: 'ok',
        mcp_servers: {
          fx: { command: MCP },
          remote: { type: 'http', url: 'https://mcp.example.com/mcp', headers: { Authorization: { value: 'Bearer hdr-secret-7', secret: true } } },
        },
      },
      ALICE,
    );
    expect(ok.status).toBe(201);
    expect(ok.body.mcp_servers.remote.headers).toEqual({ Authorization: { secret: true } });
    expect(ok.raw).not.toContain('hdr-secret-7');
    // A schema's $id is nobody's to take: the same schema works for every user, again and again; a 2020-12 schema is checked by its draft.
    const withId = { $id: 'https://example.com/answer', type: 'object', properties: { a: { type: 'string' } } };
    for (const who of [ALICE, BOB, ALICE]) expect((await call(t.app, 'POST', '/v1/agents', { name: 'ids', output_schema: withId }, who)).status).toBe(201);
    const draft2020 = { $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'object', prefixItems: [{ type: 'string' }] };
    expect((await call(t.app, 'POST', '/v1/agents', { name: '2020', output_schema: draft2020 }, ALICE)).status).toBe(201);
    // Very deep nesting is a 400, not a 500.
    const deep = '{"name":"deep","output_schema":' + '{"a":'.repeat(20_000) + '1' + '}'.repeat(20_000) + '}';
    const deepR = await t.app.inject({ method: 'POST', url: '/v1/agents', payload: deep, headers: { 'content-type': 'application/json', ...ALICE } });
    expect(deepR.statusCode).toBe(400);
    // A body that is not JSON is refused without quoting it back (it may hold a secret).
    const bad = await t.app.inject({
      method: 'POST',
      url: '/v1/agents',
      payload: '{"name":"x","env":{"TOKEN":{"value":hunter2secret,"secret":true}}}',
      headers: { 'content-type': 'application/json', ...ALICE },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).not.toContain('hunter2');
    const noAgent = await call(t.app, 'POST', '/v1/sessions', { agent_version: 2 }, ALICE);
    expect([noAgent.status, noAgent.body.error.details.field]).toEqual([400, 'body.agent_version']);
    const unknown = await call(t.app, 'POST', '/v1/sessions', { agent_id: '2f0c6c8e-1111-4222-8333-444455556666' }, ALICE);
    expect([unknown.status, unknown.body.error.code]).toEqual([404, 'AGENT_NOT_FOUND']);
  });
});

describe('agents at work: MCP servers, tool lists, turn limits, structured output (real CLI, offline model)', () => {
  const t = useApp({ env: { MCP_ALLOWED_COMMANDS: MCP, PREWARM_SPARES: '1', AGENT_ENV_ALLOWED: 'FIXTURE_TOKEN,STAGE' } });

  async function turn(sessionId: string, body: Record<string, unknown>) {
    const r = await call(t.app, 'POST', `/v1/sessions/${sessionId}/turns`, body);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body;
  }
  const events = async (sessionId: string) => {
    const r = await t.app.inject({ method: 'GET', url: `/v1/sessions/${sessionId}/events`, headers: { accept: 'text/event-stream' }, payloadAsStream: true });
    // A finished session's log, read until it is quiet.
    const stream = r.stream();
    let text = '';
    await new Promise<void>((resolve) => {
      let timer = setTimeout(resolve, 1000);
      stream.on('data', (d: Buffer) => {
        text += d.toString();
        clearTimeout(timer);
        timer = setTimeout(resolve, 300);
      });
    });
    stream.destroy();
    return text
      .split('\n\n')
      .map((chunk) => ({ event: /^event: (.*)$/m.exec(chunk)?.[1], data: /^data: (.*)$/m.exec(chunk)?.[1] }))
      .filter((e) => e.event && e.data)
      .map((e) => ({ event: e.event!, data: JSON.parse(e.data!) }));
  };

  it("an MCP server's tool is listed in the init, called, and its answer (and its secret env) reaches the result", async () => {
    const agent = (
      await call(t.app, 'POST', '/v1/agents', {
        name: 'mcp user',
        mcp_servers: { fixture: { command: MCP, env: { FIXTURE_TOKEN: { value: 'mcp-env-secret-9', secret: true } } } },
        allowed_tools: ['mcp__fixture'],
      })
    ).body;
    const s = (await call(t.app, 'POST', '/v1/sessions', { agent_id: agent.agent_id })).body;
    expect(s.agent).toEqual({ agent_id: agent.agent_id, version: 1 });
    const r = await turn(s.session_id, { prompt: '[[tool:mcp__fixture__echo {"text":"hello from the test"}]]' });
    expect(r).toMatchObject({ status: 'succeeded', result: 'The command ran. Output: echo: hello from the test' });
    const init = (await events(s.session_id)).find((e) => e.event === 'message' && e.data.type === 'system' && e.data.subtype === 'init');
    expect(init!.data.tools).toEqual(expect.arrayContaining(['mcp__fixture__echo', 'mcp__fixture__add', 'mcp__fixture__env']));
    expect(init!.data.mcp_servers).toEqual([expect.objectContaining({ name: 'fixture', status: 'connected' })]);
    // The second turn runs in the same warm process, with the server's environment: its own variables,
    // none of the CLI's (not the model's key), in a folder of its own (not the user's, where files could be planted).
    const env = await turn(s.session_id, { prompt: '[[tool:mcp__fixture__env {"name":"FIXTURE_TOKEN"}]]' });
    expect(env.result).toBe('The command ran. Output: env: mcp-env-secret-9');
    const key = await turn(s.session_id, { prompt: '[[tool:mcp__fixture__env {"name":"ANTHROPIC_API_KEY"}]]' });
    expect(key.result).toBe('The command ran. Output: env: (unset)');
    const cwd = (await turn(s.session_id, { prompt: '[[tool:mcp__fixture__cwd {}]]' })).result.replace('The command ran. Output: cwd: ', '');
    expect(cwd.startsWith(t.config.dataDir)).toBe(true);
    expect(cwd.startsWith(s.cwd)).toBe(false);
  });

  it('a disallowed tool is refused; max_turns stops a looping turn with MAX_TURNS; the session keeps working', async () => {
    const agent = (
      await call(t.app, 'POST', '/v1/agents', { name: 'limited', mcp_servers: { fixture: { command: MCP } }, allowed_tools: ['mcp__fixture'], max_turns: 3 })
    ).body;
    const s = (await call(t.app, 'POST', '/v1/sessions', { agent_id: agent.agent_id, disallowed_tools: ['mcp__fixture__echo'] })).body;
    expect(s.options).toMatchObject({ max_turns: 3, disallowed_tools: ['mcp__fixture__echo'] });
    const refused = await turn(s.session_id, { prompt: '[[tool:mcp__fixture__echo {"text":"x"}]]' });
    expect(refused.status).toBe('succeeded');
    expect(refused.result).toMatch(/refused or failed.*No such tool available: mcp__fixture__echo/);
    const looping = await turn(s.session_id, { prompt: '[[loop:mcp__fixture__add {"a":1,"b":2}]]' });
    expect(looping).toMatchObject({ status: 'failed', error: { code: 'MAX_TURNS' } });
    const after = await turn(s.session_id, { prompt: '[[tool:mcp__fixture__add {"a":2,"b":3}]]' });
    expect(after).toMatchObject({ status: 'succeeded', result: 'The command ran. Output: sum: 5' });
  });

  it('max_budget_usd bounds each turn, not the process: turns that each fit it all succeed', async () => {
    const probe = (await call(t.app, 'POST', '/v1/sessions', { prompt: 'hello' })).body;
    const cost = (await waitForTurn(t.app, probe.session_id, probe.turn.turn_id)).cost_usd;
    expect(cost).toBeGreaterThan(0);
    const s = (await call(t.app, 'POST', '/v1/sessions', { max_budget_usd: cost * 1.8 })).body;
    for (const p of ['remember: my fruit is a pear', 'what is my fruit?', 'hello again']) {
      const r = await turn(s.session_id, { prompt: p });
      expect([p, r.status]).toEqual([p, 'succeeded']);
    }
  });

  it('addresses no agent may reach', () => {
    for (const ip of [
      '127.0.0.1',
      '10.1.2.3',
      '172.20.0.1',
      '192.168.1.1',
      '169.254.169.254',
      '0.0.0.0',
      '::1',
      'fe80::1',
      'fd00::1',
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
      '100.64.0.1',
      '64:ff9b::a00:1',
      '2002:a00:1::1',
      '::7f00:1',
      'fec0::1',
      '192.0.0.192',
      '198.18.0.1',
    ]) {
      expect([ip, isClosedAddress(ip)]).toEqual([ip, true]);
    }
    for (const ip of ['1.1.1.1', '93.184.216.34', '2606:4700::1111', '2a00:1450::1']) expect([ip, isClosedAddress(ip)]).toEqual([ip, false]);
  });

  it("structured output: the session's or the turn's schema; a matching answer is structured_output, a wrong one fails the turn", async () => {
    const schema = { type: 'object', properties: { answer: { type: 'number' } }, required: ['answer'], additionalProperties: false };
    const s = (await call(t.app, 'POST', '/v1/sessions', { output_schema: schema })).body;
    const good = await turn(s.session_id, { prompt: '[[json:{"answer":42}]]' });
    expect(good).toMatchObject({ status: 'succeeded', structured_output: { answer: 42 } });
    const bad = await turn(s.session_id, { prompt: '[[json:{"answer":"forty-two"}]]' });
    expect(bad).toMatchObject({ status: 'failed', structured_output: null, error: { code: 'STRUCTURED_OUTPUT_INVALID' } });
    expect(bad.error.message).toMatch(/answer/);

    // A plain session, one turn with its own schema (a new process for it), then plain turns again.
    const plain = (await call(t.app, 'POST', '/v1/sessions', { prompt: 'remember: my color is teal' })).body;
    await waitForTurn(t.app, plain.session_id, plain.turn.turn_id);
    const own = await turn(plain.session_id, { prompt: '[[json:{"color":"teal"}]]', output_schema: { type: 'object', required: ['color'] } });
    expect(own).toMatchObject({ status: 'succeeded', structured_output: { color: 'teal' } });
    const next = await turn(plain.session_id, { prompt: 'what is my color?' });
    expect(next).toMatchObject({ status: 'succeeded', result: 'Your color is teal.', structured_output: null });
    const q = await call(t.app, 'POST', '/v1/query', { query: '[[json:{"n":1}]]', output_schema: { type: 'object', required: ['n'] } });
    expect(q.body).toMatchObject({ status: 'succeeded', structured_output: { n: 1 } });
    const badSchema = await call(t.app, 'POST', `/v1/sessions/${plain.session_id}/turns`, { prompt: 'x', output_schema: { type: 'nope' } });
    expect([badSchema.status, badSchema.body.error.details.field]).toEqual([400, 'body.output_schema']);
  });

  it('a new agent version applies to new sessions, not to sessions made before; its env reaches the commands', async () => {
    const agent = (await call(t.app, 'POST', '/v1/agents', { name: 'versions', env: { STAGE: 'one' }, allowed_tools: ['Bash'] })).body;
    const before = (await call(t.app, 'POST', '/v1/sessions', { agent_id: agent.agent_id })).body;
    expect((await turn(before.session_id, { prompt: '[[bash:echo stage=$STAGE]]' })).result).toBe('The command ran. Output: stage=one');
    await call(t.app, 'PATCH', `/v1/agents/${agent.agent_id}`, { env: { STAGE: 'two' } });
    const after = (await call(t.app, 'POST', '/v1/sessions', { agent_id: agent.agent_id })).body;
    expect([before.agent.version, after.agent.version]).toEqual([1, 2]);
    expect(after.options.env).toEqual({ STAGE: 'two' });
    expect((await turn(after.session_id, { prompt: '[[bash:echo stage=$STAGE]]' })).result).toBe('The command ran. Output: stage=two');
    expect((await call(t.app, 'GET', `/v1/sessions/${before.session_id}`)).body.options.env).toEqual({ STAGE: 'one' });
    expect((await turn(before.session_id, { prompt: '[[bash:echo again=$STAGE]]' })).result).toBe('The command ran. Output: again=one');
  });

  it("the agent's permission mode is its sessions' (a session may choose another): under dontAsk an edit is refused without asking", async () => {
    const made = await call(t.app, 'POST', '/v1/agents', { name: 'no questions', permission_mode: 'dontAsk' });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    const created = await call(t.app, 'POST', '/v1/sessions', { agent_id: made.body.agent_id, project: 'no-questions' });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const s = created.body;
    expect(s.permission_mode).toBe('dontAsk');
    const file = path.join(s.cwd, 'note.txt');
    const r = await turn(s.session_id, { prompt: `[[tool:Write ${JSON.stringify({ file_path: file, content: 'hi' })}]]` });
    expect(r.status).toBe('succeeded');
    expect(fs.existsSync(file)).toBe(false);
    expect((await call(t.app, 'GET', `/v1/sessions/${s.session_id}/permissions`)).body.requests).toEqual([]);
    const own = (await call(t.app, 'POST', '/v1/sessions', { agent_id: made.body.agent_id, permission_mode: 'default' })).body;
    expect(own.permission_mode).toBe('default');
  });

  it("the agent's model, system prompt (replaced or appended), effort and thinking reach the model's request", async () => {
    const agent = (
      await call(t.app, 'POST', '/v1/agents', {
        name: 'zed',
        model: 'claude-zed-1',
        system_prompt: 'You are Zed, a terse assistant.',
        effort: 'low',
        thinking: { type: 'disabled' },
      })
    ).body;
    const s = (await call(t.app, 'POST', '/v1/sessions', { agent_id: agent.agent_id })).body;
    const seen = JSON.parse((await turn(s.session_id, { prompt: '[[request]]' })).result.replace(/^request: /, ''));
    expect(seen).toMatchObject({ model: 'claude-zed-1', system_end: expect.stringMatching(/You are Zed, a terse assistant\.$/) });
    expect(seen.effort).toBe('low');

    // Appended: Claude Code's own prompt stays, with the text after it.
    const plain = (await call(t.app, 'POST', '/v1/sessions', {})).body;
    const own = JSON.parse((await turn(plain.session_id, { prompt: '[[request]]' })).result.replace(/^request: /, ''));
    const appended = (await call(t.app, 'POST', '/v1/sessions', { append_system_prompt: 'Always answer in French.' })).body;
    const more = JSON.parse((await turn(appended.session_id, { prompt: '[[request]]' })).result.replace(/^request: /, ''));
    expect(more.system_end).toMatch(/Always answer in French\.$/);
    expect(more.system_chars).toBeGreaterThanOrEqual(own.system_chars + 'Always answer in French.'.length);
    expect(own.system_end).not.toMatch(/Zed/);
    // Thinking: adaptive by default, off for the agent that turned it off.
    expect(own.thinking).toMatchObject({ type: 'adaptive' });
    expect(seen.thinking === null || seen.thinking.type === 'disabled').toBe(true);
  });

  it('an MCP server that cannot start is an error event on the turn, which goes on without it', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', { mcp_servers: { broken: { command: MCP, args: ['--fail'] } } })).body;
    const started = Date.now();
    const r = await turn(s.session_id, { prompt: '[[say:still here]]' });
    expect(r).toMatchObject({ status: 'succeeded', result: 'still here' });
    expect(Date.now() - started).toBeLessThan(20_000);
    const err = (await events(s.session_id)).find((e) => e.event === 'error');
    expect(err!.data).toMatchObject({ code: 'MCP_SERVER_FAILED', servers: [{ name: 'broken', status: 'failed' }] });
    expect(err!.data.message).toMatch(/"broken"/);
  });
});

describe("the operator's policy holds for sessions made before it changed", () => {
  it('a command taken off MCP_ALLOWED_COMMANDS no longer starts for an existing session: its turn fails with the reason', async () => {
    const dirs = makeDirs();
    const first = await startApp({ dirs, env: { MCP_ALLOWED_COMMANDS: MCP } });
    let sessionId: string;
    try {
      const s = (await call(first.app, 'POST', '/v1/sessions', { mcp_servers: { fixture: { command: MCP } }, allowed_tools: ['mcp__fixture'] })).body;
      sessionId = s.session_id;
      const ok = (await call(first.app, 'POST', `/v1/sessions/${sessionId}/turns`, { prompt: '[[tool:mcp__fixture__add {"a":1,"b":1}]]' })).body;
      expect(ok.result).toBe('The command ran. Output: sum: 2');
    } finally {
      await first.close();
    }
    const second = await startApp({ dirs, env: { MCP_ALLOWED_COMMANDS: '' } });
    try {
      const r = (await call(second.app, 'POST', `/v1/sessions/${sessionId}/turns`, { prompt: '[[tool:mcp__fixture__add {"a":1,"b":1}]]' })).body;
      expect(r).toMatchObject({ status: 'failed', error: { code: 'INVALID_REQUEST' } });
      expect(r.error.message).toMatch(/MCP_ALLOWED_COMMANDS/);
    } finally {
      await second.close();
    }
  });
});
