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

/** A model name: never a leading "-" (it becomes an argument of the CLI, and must not look like a flag). */
export const ModelNameSchema = Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9][A-Za-z0-9._:\\[\\]-]*$' });

/** A JSON Schema the turn's result must match (the SDK's `outputFormat`). */
export const OutputSchemaSchema = Type.Unsafe<Record<string, unknown>>({
  type: 'object',
  additionalProperties: true,
  description: "A JSON Schema (an object); the turn's `structured_output` holds the model's answer, validated against it",
  examples: [{ type: 'object', properties: { answer: { type: 'string' } }, required: ['answer'] }],
});

const EnvName = '^[A-Za-z_][A-Za-z0-9_]{0,127}$';
const HeaderName = "^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$";

/**
 * A value of an agent's `env`, or of an MCP server's `env` or `headers`: a plain string, or
 * `{value, secret: true}`: a secret is never returned (it reads `{secret: true}`) nor logged. In an
 * update, `{secret: true}` without a value keeps the secret the agent already has under that name.
 */
export const EnvValueInputSchema = Type.Union([
  Type.String({ maxLength: 16_384 }),
  Type.Object({ value: Type.Optional(Type.String({ maxLength: 16_384 })), secret: Type.Boolean() }, { additionalProperties: false }),
]);
/** How a value is shown: secrets as `{secret: true}` only. */
export const EnvValueViewSchema = Type.Union([Type.String(), Type.Object({ secret: Type.Literal(true) })]);
/** How a value is stored and handed to the CLI. */
export const EnvValueStoredSchema = Type.Union([Type.String(), Type.Object({ value: Type.String(), secret: Type.Literal(true) })]);

const envMap = <V extends typeof EnvValueInputSchema | typeof EnvValueViewSchema | typeof EnvValueStoredSchema>(v: V, pattern: string) =>
  Type.Record(Type.String({ pattern }), v, { maxProperties: 100 });

const ToolName = Type.String({ minLength: 1, maxLength: 600, pattern: '^[A-Za-z_][A-Za-z0-9_.*-]*(\\([\\s\\S]{1,500}\\))?$' });

function agentOptionsSchema<V extends typeof EnvValueInputSchema | typeof EnvValueViewSchema | typeof EnvValueStoredSchema>(v: V) {
  const McpStdio = Type.Object(
    {
      type: Type.Optional(Type.Literal('stdio')),
      command: Type.String({ minLength: 1, maxLength: 1024, description: 'One of the commands the operator allows (MCP_ALLOWED_COMMANDS)' }),
      args: Type.Optional(Type.Array(Type.String({ maxLength: 4096 }), { maxItems: 100 })),
      env: Type.Optional(envMap(v, EnvName)),
    },
    { additionalProperties: false },
  );
  const McpRemote = Type.Object(
    {
      type: Type.Union([Type.Literal('http'), Type.Literal('sse')]),
      url: Type.String({ minLength: 1, maxLength: 2048, description: 'http(s) URL whose host the network policy allows (SANDBOX_NETWORK)' }),
      headers: Type.Optional(envMap(v, HeaderName)),
    },
    { additionalProperties: false },
  );
  const prompt = Type.String({ minLength: 1, maxLength: 100_000 });
  return {
    system_prompt: Type.Optional({ ...prompt, description: "Replaces Claude Code's own system prompt" }),
    append_system_prompt: Type.Optional({ ...prompt, description: "Appended to Claude Code's own system prompt" }),
    fallback_model: Type.Optional(ModelNameSchema),
    allowed_tools: Type.Optional(
      Type.Array(ToolName, {
        maxItems: 200,
        description: "Tools that run without asking (SDK allowedTools): a name, `mcp__server` for all of a server's tools, or `Bash(prefix:*)`",
      }),
    ),
    disallowed_tools: Type.Optional(Type.Array(ToolName, { maxItems: 200, description: 'Tools removed from the model (SDK disallowedTools)' })),
    mcp_servers: Type.Optional(
      Type.Record(Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }), Type.Union([McpStdio, McpRemote]), {
        maxProperties: 20,
        description: 'MCP servers by name; their tools are `mcp__<name>__<tool>`',
      }),
    ),
    max_turns: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 10_000, description: 'Most model round trips in one turn (ends the turn `failed` with MAX_TURNS)' }),
    ),
    max_budget_usd: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 100_000, description: 'Most one turn may spend (BUDGET_EXCEEDED)' })),
    output_schema: Type.Optional(OutputSchemaSchema),
    effort: Type.Optional(Type.Union([Type.Literal('low'), Type.Literal('medium'), Type.Literal('high'), Type.Literal('xhigh'), Type.Literal('max')])),
    thinking: Type.Optional(
      Type.Union([
        Type.Object({ type: Type.Literal('adaptive') }, { additionalProperties: false }),
        Type.Object({ type: Type.Literal('enabled'), budget_tokens: Type.Integer({ minimum: 1024, maximum: 1_000_000 }) }, { additionalProperties: false }),
        Type.Object({ type: Type.Literal('disabled') }, { additionalProperties: false }),
      ]),
    ),
    env: Type.Optional(envMap(v, EnvName)),
  };
}

/** The options an agent (or a session's overrides) sets, as a client sends them. */
export const AgentOptionsInputFields = agentOptionsSchema(EnvValueInputSchema);
/** As they are shown: secrets hidden. */
export const AgentOptionsViewSchema = Type.Object(agentOptionsSchema(EnvValueViewSchema));
/** As they are stored and run: secrets included. */
export const AgentOptionsStoredSchema = Type.Object(agentOptionsSchema(EnvValueStoredSchema));
export type AgentOptions = Static<typeof AgentOptionsStoredSchema>;
export type AgentOptionsInput = Static<ReturnType<typeof Type.Object<typeof AgentOptionsInputFields>>>;
export type AgentOptionsView = Static<typeof AgentOptionsViewSchema>;
export type EnvValueStored = Static<typeof EnvValueStoredSchema>;
export type EnvValueInput = Static<typeof EnvValueInputSchema>;
export const AGENT_OPTION_KEYS = Object.keys(AgentOptionsInputFields) as Array<keyof AgentOptions>;
