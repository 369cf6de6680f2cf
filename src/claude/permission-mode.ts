/**
 * @module claude/permission-mode
 * What the CLI accepts as a permission mode on this machine. As uid 0 the CLI exits at once
 * for bypassPermissions ("cannot be used with root/sudo privileges") unless IS_SANDBOX=1 is
 * set for it; we refuse such a request up front instead of letting a turn crash.
 */
import { AppError } from '../errors.js';
import type { PermissionMode } from '../schemas.js';

export type { PermissionMode } from '../schemas.js';

export const isRoot = (): boolean => typeof process.getuid === 'function' && process.getuid() === 0;

/**
 * Throws PERMISSION_MODE_REFUSED when the operator does not allow `mode`, or when the CLI would
 * refuse it here (bypass as root without the opt-in).
 */
export function assertPermissionModeUsable(mode: PermissionMode, opts: { sandboxOptIn: boolean; allowed?: readonly string[]; root?: boolean }): void {
  if (opts.allowed && !opts.allowed.includes(mode)) {
    throw new AppError(
      'PERMISSION_MODE_REFUSED',
      `permission_mode ${mode} is not allowed on this server (ALLOWED_PERMISSION_MODES: ${opts.allowed.join(', ')})`,
    );
  }
  const root = opts.root ?? isRoot();
  if (mode === 'bypassPermissions' && root && !opts.sandboxOptIn) {
    throw new AppError(
      'PERMISSION_MODE_REFUSED',
      'permission_mode bypassPermissions is refused: the server runs as root, and the Claude Code CLI refuses to skip permissions as root. ' +
        'Run the server as a non-root user, or, inside a sandbox (a container or VM), start it with IS_SANDBOX=1.',
    );
  }
}
