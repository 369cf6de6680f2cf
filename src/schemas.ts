/**
 * @module schemas
 * The shapes several folders share, each written once: ids, permission modes, usage, and the
 * statuses of sessions, turns and permission requests. The lists and types are derived from
 * these schemas (storage's column types included), so a new status or mode is added here only.
 */
import { Type, type Static } from 'typebox';

export const Uuid = Type.String({ format: 'uuid', description: "A session id: the SDK's UUID", examples: ['3f0b6f7e-8a51-4d4e-9d0e-7f8f5a1c2b3d'] });

/** The path parameters of every route under a session. */
export const SessionParamsSchema = Type.Object({ session_id: Uuid });

export const PermissionModeSchema = Type.Union(
  [Type.Literal('default'), Type.Literal('acceptEdits'), Type.Literal('bypassPermissions'), Type.Literal('plan'), Type.Literal('dontAsk')],
  { description: 'Claude Code permission mode; always passed to the CLI explicitly' },
);
export type PermissionMode = Static<typeof PermissionModeSchema>;
export const PERMISSION_MODES: readonly PermissionMode[] = PermissionModeSchema.anyOf.map((l) => l.const);

export const UsageSchema = Type.Object({ input_tokens: Type.Integer(), output_tokens: Type.Integer() });

export const SessionStatusSchema = Type.Union([Type.Literal('active'), Type.Literal('archived'), Type.Literal('deleted')]);
export type SessionStatus = Static<typeof SessionStatusSchema>;

export const TurnStatusSchema = Type.Union([
  Type.Literal('queued'),
  Type.Literal('running'),
  Type.Literal('succeeded'),
  Type.Literal('failed'),
  Type.Literal('interrupted'),
  Type.Literal('cancelled'),
]);
export type TurnStatus = Static<typeof TurnStatusSchema>;
/** The statuses a turn ends in. */
export const ENDED: readonly TurnStatus[] = ['succeeded', 'failed', 'interrupted', 'cancelled'];

export const PermissionStatusSchema = Type.Union([Type.Literal('pending'), Type.Literal('allowed'), Type.Literal('denied'), Type.Literal('expired')]);
export type PermissionStatus = Static<typeof PermissionStatusSchema>;
