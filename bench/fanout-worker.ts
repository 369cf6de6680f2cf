/**
 * Subscribers for the fan-out section, run in a process of their own (several of them) so that
 * reading hundreds of streams does not share one event loop with the bench. Each subscriber reads
 * a session's event stream from its start; for every piece the offline model stamped with its
 * clock (`[[clock:N]]`) it records how late the piece arrived. One subscriber may be told to be
 * slow: it stops reading for `slowMs` after its first live piece, then reads on.
 */
import http from 'node:http';

interface Start {
  base: string;
  /** Session ids, one per subscriber (repeated for several subscribers of one session). */
  sessions: string[];
  /** Index of the slow subscriber, if any. */
  slow?: number;
  slowMs?: number;
}

interface Sub {
  session: string;
  ids: number[];
  outOfOrder: number;
  lags: number[];
  req?: http.ClientRequest;
  /** The status of a refused stream. */
  refused?: number;
  connected: Promise<void>;
}

const subs: Sub[] = [];
const now = () => performance.timeOrigin + performance.now();
const STAMP = /"text":"@(\d+\.\d{3}) "/;

function open(base: string, session: string, slowMs: number): Sub {
  let ready!: () => void;
  const sub: Sub = { session, ids: [], outOfOrder: 0, lags: [], connected: new Promise((r) => (ready = r)) };
  const req = http.get(`${base}/v1/sessions/${session}/events`, { agent: false }, (res) => {
    if (res.statusCode !== 200) {
      sub.refused = res.statusCode ?? 0;
      res.resume();
      ready();
      return;
    }
    res.setEncoding('utf8');
    let buf = '';
    let slowed = slowMs === 0;
    res.on('data', (chunk: string) => {
      const at = now();
      buf += chunk;
      for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (block.startsWith(':')) {
          if (block.startsWith(': stream open')) ready();
          continue;
        }
        const id = Number(/^id: (\d+)/m.exec(block)?.[1]);
        if (sub.ids.length > 0 && id !== sub.ids.at(-1)! + 1) sub.outOfOrder++;
        sub.ids.push(id);
        const stamp = STAMP.exec(block);
        if (stamp) {
          sub.lags.push(at - Number(stamp[1]));
          if (!slowed) {
            // The slow reader: stops reading for a while (its socket fills), then reads on.
            slowed = true;
            res.pause();
            setTimeout(() => res.resume(), slowMs);
          }
        }
      }
    });
  });
  req.on('error', () => {
    sub.refused ??= -1;
    ready();
  });
  sub.req = req;
  return sub;
}

process.on('message', (m: { op: 'start' } & Start & { op: string }) => {
  if (m.op === 'start') {
    m.sessions.forEach((s, i) => subs.push(open(m.base, s, i === m.slow ? (m.slowMs ?? 0) : 0)));
    void Promise.all(subs.map((s) => s.connected)).then(() => process.send!({ ready: true }));
    return;
  }
  if (m.op === 'stop') {
    for (const s of subs) s.req?.destroy();
    process.send!(
      {
        subs: subs.map((s) => ({
          session: s.session,
          count: s.ids.length,
          last: s.ids.at(-1) ?? 0,
          first: s.ids[0] ?? 0,
          outOfOrder: s.outOfOrder,
          refused: s.refused ?? 0,
          lags: s.lags.map((x) => Math.round(x * 100) / 100),
        })),
      },
      () => process.exit(0),
    );
  }
});
process.send!({ up: true });
