import { describe, expect, it } from 'vitest';
import { call, useApp, waitForTurn } from '../helper.js';

/** A 1x1 PNG (70 bytes) and a one-page PDF. */
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
const PDF =
  'JVBERi0xLjQKMSAwIG9iajw8L1R5cGUvQ2F0YWxvZy9QYWdlcyAyIDAgUj4+ZW5kb2JqCjIgMCBvYmo8PC9UeXBlL1BhZ2VzL0tpZHNbMyAwIFJdL0NvdW50IDE+PmVuZG9iagozIDAgb2JqPDwvVHlwZS9QYWdlL1BhcmVudCAyIDAgUi9NZWRpYUJveFswIDAgNzIgNzJdPj5lbmRvYmoKdHJhaWxlcjw8L1Jvb3QgMSAwIFI+PgolJUVPRgo=';
const image = (data = PNG, mediaType = 'image/png') => ({ type: 'image', source: { type: 'base64', media_type: mediaType, data } });
const pdf = { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: PDF } };

describe('prompts with attachments: images and PDF documents reach the model; wrong ones are refused before anything is written', () => {
  const t = useApp({ env: { MAX_ATTACHMENT_BYTES: '4096', MAX_ATTACHMENTS: '3' } });

  it('an image and a PDF reach the model request (the offline model says what it received), on every endpoint that takes a prompt', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', {})).body;
    const r = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: [{ type: 'text', text: 'What is this? [[received]]' }, image(), pdf] });
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('succeeded');
    expect(r.body.result).toMatch(/^received: text, image image\/png 70 bytes, /);
    expect(r.body.result).toContain(`document application/pdf ${Buffer.from(PDF, 'base64').length} bytes`);
    expect(r.body.prompt).toBe('What is this? [[received]]');
    expect(r.body.attachments).toEqual([
      { type: 'image', media_type: 'image/png', bytes: 70 },
      { type: 'document', media_type: 'application/pdf', bytes: Buffer.from(PDF, 'base64').length },
    ]);
    // The conversation goes on after it (the transcript holds the image).
    const next = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: 'remember: my pet is a cat' });
    expect(next.body.status).toBe('succeeded');

    const created = await call(t.app, 'POST', '/v1/sessions', { prompt: [{ type: 'text', text: '[[received]]' }, image()] });
    expect(created.status).toBe(201);
    expect((await waitForTurn(t.app, created.body.session_id, created.body.turn.turn_id)).result).toMatch(/^received: text, image image\/png 70 bytes/);
    const q = await call(t.app, 'POST', '/v1/query', { query: [{ type: 'text', text: '[[received]]' }, image()] });
    expect(q.body.result).toMatch(/^received: text, image image\/png 70 bytes/);

    // The streamed operations take the same prompts: the stream ends with the turn's done.
    const prompt = [{ type: 'text', text: '[[received]]' }, pdf];
    const streamed: Array<[string, Record<string, unknown>]> = [
      ['/v1/sessions/stream', { prompt }],
      [`/v1/sessions/${s.session_id}/turns/stream`, { prompt }],
      ['/v1/query/stream', { query: prompt }],
    ];
    for (const [url, payload] of streamed) {
      const res = await t.app.inject({ method: 'POST', url, payload });
      expect([url, res.statusCode, res.headers['content-type']]).toEqual([url, 200, expect.stringContaining('text/event-stream')]);
      const done = /event: done\ndata: (.*)\n/.exec(res.body);
      expect(JSON.parse(done![1]!).result).toMatch(/^received: text, document application\/pdf \d+ bytes/);
    }
  });

  it('unsupported media types and bytes that are not what they claim are 415; bad base64 is 400; too large or too many are 413', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', {})).body;
    const big = Buffer.concat([Buffer.from(PNG, 'base64'), Buffer.alloc(5000)]).toString('base64');
    const cases: Array<[unknown[], number, string]> = [
      [[image(PNG, 'image/tiff')], 415, 'UNSUPPORTED_MEDIA_TYPE'],
      [[image(PNG, 'image/jpeg')], 415, 'UNSUPPORTED_MEDIA_TYPE'],
      [[image(PDF, 'application/pdf')], 415, 'UNSUPPORTED_MEDIA_TYPE'],
      [[{ ...pdf, source: { ...pdf.source, data: PNG } }], 415, 'UNSUPPORTED_MEDIA_TYPE'],
      [[image('not base64!')], 400, 'INVALID_REQUEST'],
      [[image(big)], 413, 'PAYLOAD_TOO_LARGE'],
      [[image(), image(), image(), image()], 413, 'PAYLOAD_TOO_LARGE'],
      [
        [
          { type: 'text', text: 'x' },
          { type: 'audio', source: {} },
        ],
        400,
        'INVALID_REQUEST',
      ],
      [[], 400, 'INVALID_REQUEST'],
    ];
    const sessionsBefore = (await call(t.app, 'GET', '/v1/sessions?limit=200')).body.sessions.length;
    for (const [prompt, status, code] of cases) {
      const r = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt });
      expect([JSON.stringify(prompt).slice(0, 80), r.status, r.body.error.code]).toEqual([JSON.stringify(prompt).slice(0, 80), status, code]);
      const c = await call(t.app, 'POST', '/v1/sessions', { prompt });
      expect(c.status).toBe(status);
      const q = await call(t.app, 'POST', '/v1/query', { query: prompt });
      expect([q.status, q.body.error.code]).toEqual([status, code]);
      // The streamed operations refuse before the stream opens: a JSON error, nothing written.
      for (const [url, payload] of [
        ['/v1/sessions/stream', { prompt }],
        [`/v1/sessions/${s.session_id}/turns/stream`, { prompt }],
        ['/v1/query/stream', { query: prompt }],
      ] as const) {
        const res = await t.app.inject({ method: 'POST', url, payload });
        expect([url, res.statusCode, res.json().error.code]).toEqual([url, status, code]);
      }
    }
    expect((await call(t.app, 'GET', `/v1/sessions/${s.session_id}/turns`)).body.turns).toEqual([]);
    expect((await call(t.app, 'GET', '/v1/sessions?limit=200')).body.sessions.length).toBe(sessionsBefore);
  });
});
