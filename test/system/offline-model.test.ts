import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOfflineModel, type OfflineModel } from '../../src/offline-model/server.js';

/** Reads an SSE body into its events. */
async function events(res: Response): Promise<Array<{ event: string; data: any }>> {
  const text = await res.text();
  return text
    .split('\n\n')
    .filter((b) => b.trim())
    .map((b) => {
      const event = /^event: (.*)$/m.exec(b)?.[1] ?? '';
      const data = JSON.parse(/^data: (.*)$/m.exec(b)?.[1] ?? 'null');
      return { event, data };
    });
}

describe('offline model', () => {
  let m: OfflineModel;
  beforeAll(async () => {
    m = await startOfflineModel();
  });
  afterAll(async () => m.close());

  const post = (messages: unknown[], stream = true) =>
    fetch(`${m.url}/v1/messages?beta=true`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'x', stream, messages }),
    });
  const user = (text: string) => ({
    role: 'user',
    content: [
      { type: 'text', text: '<system-reminder>ignore me: my favorite color is red</system-reminder>' },
      { type: 'text', text },
    ],
  });

  it('streams a message in the Messages protocol order', async () => {
    const evs = await events(await post([user('hello')]));
    const names = evs.map((e) => e.event);
    expect(names[0]).toBe('message_start');
    expect(names.slice(-2)).toEqual(['message_delta', 'message_stop']);
    expect(names.filter((n) => n === 'content_block_delta').length).toBeGreaterThan(1);
    const text = evs
      .filter((e) => e.event === 'content_block_delta')
      .map((e) => e.data.delta.text)
      .join('');
    expect(text).toContain('hello');
  });

  it('recalls only what the history holds, never system reminders', async () => {
    const withFact = await events(
      await post([user('Remember: my favorite color is blue'), { role: 'assistant', content: 'ok' }, user('What is my favorite color?')]),
    );
    expect(
      withFact
        .filter((e) => e.event === 'content_block_delta')
        .map((e) => e.data.delta.text)
        .join(''),
    ).toBe('Your favorite color is blue.');
    const without = await events(await post([user('What is my favorite color?')]));
    expect(
      without
        .filter((e) => e.event === 'content_block_delta')
        .map((e) => e.data.delta.text)
        .join(''),
    ).toMatch(/don't know/);
  });

  it('fails with the status asked for', async () => {
    const r = await post([user('[[fail:429]]')]);
    expect(r.status).toBe(429);
    expect((await r.json()).error.type).toBe('rate_limit_error');
  });

  it('asks for a Bash call, then reports its result', async () => {
    const evs = await events(await post([user('[[bash:echo hi]]')]));
    const start = evs.find((e) => e.event === 'content_block_start' && e.data.content_block.type === 'tool_use');
    expect(start?.data.content_block.name).toBe('Bash');
    const json = evs.find((e) => e.event === 'content_block_delta' && e.data.delta.type === 'input_json_delta');
    expect(JSON.parse(json!.data.delta.partial_json).command).toBe('echo hi');
    expect(evs.find((e) => e.event === 'message_delta')!.data.delta.stop_reason).toBe('tool_use');
    const after = await post(
      [
        user('[[bash:echo hi]]'),
        { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'Bash', input: {} }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: 'hi' }] },
      ],
      false,
    );
    expect((await after.json()).content[0].text).toBe('The command ran. Output: hi');
  });

  it('asks for a call of any tool with the JSON input given, and says so when the directive is malformed', async () => {
    const evs = await events(await post([user('[[tool:Read {"file_path":"/etc/hostname","limit":3}]]')]));
    const start = evs.find((e) => e.event === 'content_block_start' && e.data.content_block.type === 'tool_use');
    expect(start?.data.content_block.name).toBe('Read');
    const json = evs.find((e) => e.event === 'content_block_delta' && e.data.delta.type === 'input_json_delta');
    expect(JSON.parse(json!.data.delta.partial_json)).toEqual({ file_path: '/etc/hostname', limit: 3 });
    for (const bad of ['[[tool:Read {not json}]]', '[[tool:Read [1,2]]]', '[[tool: ]]']) {
      const r = await (await post([user(bad)], false)).json();
      expect(
        r.content.map((b: any) => b.type),
        bad,
      ).toEqual(['text']);
      expect(r.content[0].text).toMatch(/needs a tool name and a JSON object/);
    }
  });

  it('cuts the stream when asked', async () => {
    const r = await post([user('[[cut]] a fairly long answer that will be cut in the middle of it')]);
    expect(r.status).toBe(200);
    await expect(r.text()).rejects.toThrow();
  });

  it('is slow when asked', async () => {
    const t0 = Date.now();
    await (await post([user('[[slow:300]] hi')], false)).json();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
  });

  it('stamps each piece with the clock when asked, spaced out when slow', async () => {
    const before = performance.timeOrigin + performance.now();
    const evs = await events(await post([user('[[clock:5]] [[slow:100]]')]));
    const after = performance.timeOrigin + performance.now();
    const stamps = evs.filter((e) => e.event === 'content_block_delta').map((e) => Number(/^@(\d+\.\d{3}) $/.exec(e.data.delta.text)?.[1]));
    expect(stamps).toHaveLength(5);
    for (const t of stamps) {
      expect(t).toBeGreaterThanOrEqual(before);
      expect(t).toBeLessThanOrEqual(after);
    }
    // [[slow:100]] spaces the pieces 5 ms apart (a twentieth of it).
    for (let i = 1; i < stamps.length; i++) expect(stamps[i]! - stamps[i - 1]!).toBeGreaterThanOrEqual(4);
  });
});
