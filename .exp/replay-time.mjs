import D from 'better-sqlite3';
const db = new D('/tmp/replay-exp/data/server.db', { readonly: true });
const S = '11ff82f1-454d-4586-825e-9bc333fdc915';
const rows = db.prepare('select * from events where session_id = ? order by seq').all(S);
const results = new Map(db.prepare('select turn_id, result from turns where session_id = ?').all(S).map((r) => [r.turn_id, r.result]));
let t0 = performance.now();
let n = 0, bytes = 0;
for (const r of rows) {
  if (r.data.includes('"$result":"turn"')) {
    const d = JSON.parse(r.data); delete d['$result']; d.result = results.get(r.turn_id) ?? null;
    const s = JSON.stringify(d); bytes += s.length; n++;
  }
}
console.log('marked', n, 'ms', (performance.now() - t0).toFixed(1), 'bytes', bytes);
