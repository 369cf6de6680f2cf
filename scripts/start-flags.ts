/**
 * The Node flags `npm start` gives the server, read from package.json's `start` script: the tests
 * and the benchmarks start the server the same way the product does.
 */
import fs from 'node:fs';

export const START_NODE_FLAGS: string[] = (() => {
  const start = (JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: { start: string } }).scripts.start;
  const m = /\bnode((?: --\S+)*) dist\/server\.js/.exec(start);
  if (!m) throw new Error(`package.json's start script does not run node ... dist/server.js: ${start}`);
  return m[1]!.trim().split(/\s+/).filter(Boolean);
})();
