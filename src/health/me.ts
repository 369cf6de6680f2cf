/**
 * @module health/me
 * Who the caller is, and what this server lets them choose (a page offers only what will be accepted).
 */
import { Type } from 'typebox';
import type { App } from '../types.js';
import { commonErrors } from '../errors.js';
import { assertPermissionModeUsable } from '../claude/permission-mode.js';
import { PERMISSION_MODES, PermissionModeSchema } from '../schemas.js';

export async function meRoutes(app: App, opts: { sandboxOptIn: boolean; allowedPermissionModes?: readonly string[] | undefined }) {
  // Fixed while the server runs: the operator's list and whether the CLI would refuse bypass here.
  const usable = PERMISSION_MODES.filter((mode) => {
    try {
      assertPermissionModeUsable(mode, { sandboxOptIn: opts.sandboxOptIn, ...(opts.allowedPermissionModes ? { allowed: opts.allowedPermissionModes } : {}) });
      return true;
    } catch {
      return false;
    }
  });
  app.get('/v1/me', {
    schema: {
      tags: ['system'],
      operationId: 'getMe',
      summary: 'The caller, and the permission modes this server accepts',
      response: {
        200: Type.Object({
          user_id: Type.String(),
          admin: Type.Boolean(),
          permission_modes: Type.Array(PermissionModeSchema, { description: 'The modes a session or turn may ask for here (ALLOWED_PERMISSION_MODES, root)' }),
        }),
        ...commonErrors,
      },
    },
    handler: async (req) => ({ user_id: req.caller.userId, admin: req.caller.admin, permission_modes: [...usable] }),
  });
}
