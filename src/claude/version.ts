/**
 * @module claude/version
 * Versions of the SDK and of the CLI binary it ships, for /health.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { cliBinaryPath, sdkVersion } from './paths.js';

/** `{ sdk, cli }`; `cli` is null when the binary cannot be run. */
export async function claudeVersions(): Promise<{ sdk: string; cli: string | null; cliPath: string | null }> {
  let cli: string | null = null;
  let cliPath: string | null = null;
  try {
    cliPath = cliBinaryPath();
    const { stdout } = await promisify(execFile)(cliPath, ['--version'], { timeout: 10_000 });
    cli = stdout.trim().split(/\s+/)[0] ?? null;
  } catch {
    cli = null;
  }
  return { sdk: sdkVersion(), cli, cliPath };
}
