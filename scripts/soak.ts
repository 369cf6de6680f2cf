/**
 * The soak workload, shared by `npm run bench -- soak` (5,000 turns) and the suite's short leak
 * check (500): turns over many sessions from several clients, mixed as a real team's traffic is.
 * Each operation takes a session no other client is using (so nothing is refused as busy):
 * - a plain turn (warm, or cold when the session's process was closed: more sessions than warm ones);
 * - a streamed turn whose client hangs up after its first message (the turn goes on);
 * - a slow turn that is interrupted;
 * - a turn that asks to run a command and is approved;
 * - a session deleted (purged, every other one soft) and a new one made in its place.
 * Lost turns: a turn that did not end as it should, or a session whose turn count differs from the
 * turns run in it. `onProgress` is called at each tenth of the work, with nothing running.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

/**
 * Bytes and entries under a folder, walked one folder at a time: an entry removed while it is walked
 * (a socket of an ended process) is skipped, where `readdirSync(..., { recursive: true })` throws.
 */
export function sizeOf(p: string): { bytes: number; entries: number } {
  let bytes = 0;
  let entries = 0;
  const walk = (d: string) => {
    let list: fs.Dirent[];
    try {
      list = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of list) {
      entries++;
      const f = path.join(d, e.name);
      if (e.isDirectory()) walk(f);
      else bytes += fs.lstatSync(f, { throwIfNoEntry: false })?.size ?? 0;
    }
  };
  walk(p);
  return { bytes, entries };
}

export interface SoakOptions {
  turns: number;
  sessions: number;
  clients: number;
  /** Called at each 10% of the turns (and at 0), with no operation in flight. */
  onProgress?: (done: number) => Promise<void>;
  seed?: number;
  /** Shares of the operations that are not plain turns (the rest are plain turns). */
  mix?: { stream: number; interrupt: number; approval: number; delete: number };
}

/** The default mix: 60% plain turns. */
export const TEAM_MIX = { stream: 0.12, interrupt: 0.1, approval: 0.1, delete: 0.08 };

export interface SoakResult {
  turns: number;
  byKind: Record<string, number>;
  /** Median time of each kind of operation, ms. */
  medianMs: Record<string, number>;
  lost: number;
  problems: string[];
  seconds: number;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

function request(base: string, method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      base + url,
      {
        method,
        agent,
        headers: { ...(payload ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) } : {}), ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown = text;
          try {
            json = JSON.parse(text);
          } catch {
            // not JSON
          }
          resolve({ status: res.statusCode ?? 0, body: json });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** Starts a streamed turn and hangs up after its first message; answers the turn's id. */
function streamAndDrop(base: string, sessionId: string, prompt: string): Promise<string> {
  const payload = JSON.stringify({ prompt });
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${base}/v1/sessions/${sessionId}/turns`,
      {
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)), accept: 'text/event-stream' },
      },
      (res) => {
        if (res.statusCode !== 200) return reject(new Error(`stream ${res.statusCode}`));
        let buf = '';
        let turnId = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          buf += c;
          turnId ||= /"turn_id":"([0-9a-f-]{36})"/.exec(buf)?.[1] ?? '';
          if (turnId && /event: message\n/.test(buf)) {
            req.destroy();
            resolve(turnId);
          }
        });
        res.on('end', () => (turnId ? resolve(turnId) : reject(new Error('stream ended without a turn'))));
      },
    );
    req.on('error', (e) => (req.destroyed ? undefined : reject(e)));
    req.end(payload);
  });
}

/** A small deterministic generator (mulberry32): the same mix for the same seed. */
function random(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runSoak(base: string, o: SoakOptions): Promise<SoakResult> {
  const rnd = random(o.seed ?? 1);
  const mix = o.mix ?? TEAM_MIX;
  const problems: string[] = [];
  const byKind: Record<string, number> = {};
  const times: Record<string, number[]> = {};
  const t0 = performance.now();
  const api = async (method: string, url: string, body?: unknown) => {
    const r = await request(base, method, url, body);
    if (r.status >= 300) throw new Error(`${method} ${url}: ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
    return r.body;
  };
  const finalTurn = async (sessionId: string, turnId: string) => {
    for (let i = 0; i < 1200; i++) {
      const t = await api('GET', `/v1/sessions/${sessionId}/turns/${turnId}`);
      if (!['queued', 'running'].includes(t.status)) return t;
      await sleep(50);
    }
    throw new Error(`turn ${turnId} did not end in 60 s`);
  };
  const newSession = async (n: number) => {
    const r = await api('POST', '/v1/sessions', { prompt: `Remember: my favorite number is ${n}`, project: `soak-${n % 10}` });
    if (r.turn?.status !== 'succeeded') throw new Error(`first turn ${r.turn?.status}`);
    return r.session_id as string;
  };

  // Sessions: id, turns run in it, whether a client uses it now.
  const sessions = await Promise.all(Array.from({ length: o.sessions }, async (_, n) => ({ n, id: await newSession(n), turns: 1, busy: false })));
  let done = 0;
  let nextMark = 0;
  let started = 0;
  let marking: Promise<void> | null = null;
  const mark = async () => {
    await o.onProgress?.(done);
    nextMark += o.turns / 10;
  };
  await mark();

  async function operation(s: (typeof sessions)[number]): Promise<void> {
    const r = rnd();
    let kind = 'turn';
    let edge = 0;
    for (const [k, share] of [
      ['dropped stream', mix.stream],
      ['interrupt', mix.interrupt],
      ['approval', mix.approval],
      ['delete', mix.delete],
    ] as const) {
      edge += share;
      if (r < edge) {
        kind = k;
        break;
      }
    }
    byKind[kind] = (byKind[kind] ?? 0) + 1;
    const began = performance.now();
    const expect = (what: string, got: string, want: string) => {
      if (got !== want) problems.push(`${kind} in ${s.id}: ${what} ${got}, expected ${want}`);
    };
    if (kind === 'turn') {
      const t = await api('POST', `/v1/sessions/${s.id}/turns`, { prompt: `turn ${s.turns}: what is my favorite number?` });
      expect('status', t.status, 'succeeded');
      if (!new RegExp(`\\b${s.n}\\b`).test(t.result ?? ''))
        problems.push(`turn in ${s.id}: the answer lost the conversation: ${String(t.result).slice(0, 100)}`);
    } else if (kind === 'dropped stream') {
      const turnId = await streamAndDrop(base, s.id, '[[words:300]]');
      expect('status', (await finalTurn(s.id, turnId)).status, 'succeeded');
    } else if (kind === 'interrupt') {
      const t = await api('POST', `/v1/sessions/${s.id}/turns?wait=false`, { prompt: '[[slow:5000]] take your time' });
      await sleep(100 + Math.floor(rnd() * 400));
      await api('POST', `/v1/sessions/${s.id}/interrupt`);
      expect('status', (await finalTurn(s.id, t.turn_id)).status, 'interrupted');
    } else if (kind === 'approval') {
      const t = await api('POST', `/v1/sessions/${s.id}/turns?wait=false`, { prompt: '[[bash:echo soak]]' });
      let request: { request_id: string } | undefined;
      for (let i = 0; i < 600 && !request; i++) {
        request = (await api('GET', `/v1/sessions/${s.id}/permissions`)).requests[0];
        if (!request) await sleep(50);
      }
      if (!request) throw new Error(`no permission request for turn ${t.turn_id}`);
      await api('POST', `/v1/sessions/${s.id}/permissions/${request.request_id}`, { behavior: 'allow' });
      const end = await finalTurn(s.id, t.turn_id);
      expect('status', end.status, 'succeeded');
      if (!/soak/.test(end.result ?? '')) problems.push(`approval in ${s.id}: the command's output is missing: ${String(end.result).slice(0, 100)}`);
    } else {
      // Half purged, half soft-deleted; a new session takes its place (its first turn counts).
      await api('DELETE', `/v1/sessions/${s.id}${rnd() < 0.5 ? '?purge=true' : ''}`);
      s.id = await newSession(s.n);
      s.turns = 0;
    }
    s.turns++;
    (times[kind] ??= []).push(performance.now() - began);
  }

  await Promise.all(
    Array.from({ length: o.clients }, async () => {
      for (;;) {
        if (started >= o.turns) return;
        // Progress is sampled with nothing in flight: wait for the others at each tenth.
        if (started >= nextMark) {
          marking ??= (async () => {
            while (done < started) await sleep(20);
            await mark();
          })().finally(() => (marking = null));
          await marking;
          continue;
        }
        const free = sessions.filter((x) => !x.busy);
        if (free.length === 0) {
          await sleep(10);
          continue;
        }
        const s = free[Math.floor(rnd() * free.length)]!;
        s.busy = true;
        started++;
        try {
          await operation(s);
        } catch (err) {
          problems.push(`operation in ${s.id}: ${(err as Error).message}`);
        } finally {
          s.busy = false;
          done++;
        }
      }
    }),
  );
  if (done >= nextMark) await mark();

  // Every session holds exactly the turns run in it.
  let lost = problems.length;
  for (const s of sessions) {
    const row = await api('GET', `/v1/sessions/${s.id}`);
    if (row.turn_count !== s.turns) {
      lost++;
      problems.push(`session ${s.id}: turn_count ${row.turn_count}, ${s.turns} turns were run`);
    }
  }
  const medianMs = Object.fromEntries(Object.entries(times).map(([k, xs]) => [k, Math.round([...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!)]));
  return { turns: done, byKind, medianMs, lost, problems, seconds: (performance.now() - t0) / 1000 };
}
