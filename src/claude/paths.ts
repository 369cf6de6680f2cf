/**
 * @module claude/paths
 * Where the CLI keeps things. The CLI names a project folder after the session's cwd by
 * replacing every character that is not a letter or digit with `-`; past 200 characters it
 * cuts the name and appends a hash of the whole path. We compute the folder from the cwd we
 * stored (never the reverse: different folders can map to one name).
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const MAX_NAME = 200;

/** The 32-bit string hash the CLI uses for the suffix of long folder names, in base 36. */
function nameHash(s: string): string {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = ((h << 5) - h + s.charCodeAt(i)) | 0;
  return Math.abs(h).toString(36);
}

/** The folder name the CLI gives a project at `cwd` (an absolute, real path). */
export function projectDirName(cwd: string): string {
  const name = cwd.replace(/[^a-zA-Z0-9]/g, '-');
  return name.length <= MAX_NAME ? name : `${name.slice(0, MAX_NAME)}-${nameHash(cwd)}`;
}

/** The projects folder of the CLI for `cwd`. */
export function projectDir(configDir: string, cwd: string): string {
  return path.join(configDir, 'projects', projectDirName(cwd));
}

/** Where the CLI writes the transcript of session `sessionId` run in `cwd`. */
export function transcriptPath(configDir: string, cwd: string, sessionId: string): string {
  return path.join(projectDir(configDir, cwd), `${sessionId}.jsonl`);
}

const require = createRequire(import.meta.url);

/** The native CLI binary the SDK's npm package ships for this platform. */
export function cliBinaryPath(): string {
  const musl =
    process.platform === 'linux' && !(process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime;
  const pkg = `@anthropic-ai/claude-agent-sdk-${process.platform}-${process.arch}${musl ? '-musl' : ''}`;
  const dir = path.dirname(require.resolve(`${pkg}/package.json`));
  const bin = path.join(dir, process.platform === 'win32' ? 'claude.exe' : 'claude');
  if (!fs.existsSync(bin)) throw new Error(`the Claude Code binary is missing at ${bin}`);
  return bin;
}

/** The SDK's npm version. */
export function sdkVersion(): string {
  const main = require.resolve('@anthropic-ai/claude-agent-sdk');
  return (JSON.parse(fs.readFileSync(path.join(path.dirname(main), 'package.json'), 'utf8')) as { version: string }).version;
}
