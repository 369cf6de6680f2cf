/**
 * @module errors
 * The closed list of error codes and their HTTP statuses, in one place. Services throw
 * `AppError`; the single error handler in `app.ts` turns it into the JSON error body.
 */
import { Type } from 'typebox';

export const ERROR_STATUS = {
  INVALID_REQUEST: 400,
  INVALID_PROJECT: 400,
  INVALID_MESSAGE_ID: 400,
  PERMISSION_MODE_REFUSED: 400,
  UNAUTHORIZED: 401,
  NOT_FOUND: 404,
  AGENT_NOT_FOUND: 404,
  WEBHOOK_NOT_FOUND: 404,
  SESSION_NOT_FOUND: 404,
  TURN_NOT_FOUND: 404,
  PERMISSION_REQUEST_NOT_FOUND: 404,
  SESSION_BUSY: 409,
  AGENT_CHANGED: 409,
  SESSION_DELETED: 409,
  TRANSCRIPT_MISSING: 409,
  TURN_NOT_CANCELLABLE: 409,
  NO_RUNNING_TURN: 409,
  SESSION_NOT_ISOLATED: 409,
  PERMISSION_ALREADY_DECIDED: 409,
  REQUEST_TIMEOUT: 408,
  PRECONDITION_FAILED: 412,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RANGE_NOT_SATISFIABLE: 416,
  HEADERS_TOO_LARGE: 431,
  RATE_LIMITED: 429,
  CAPACITY_EXCEEDED: 429,
  INTERNAL: 500,
  SHUTTING_DOWN: 503,
  UNAVAILABLE: 503,
  SANDBOX_UNAVAILABLE: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;
export const ERROR_CODES = Object.keys(ERROR_STATUS) as ErrorCode[];

/**
 * Codes a turn can end with (`Turn.error.code`, the SSE `error` event) besides the ones above
 * (a turn that fails on a request error carries that code): how it was stopped, or why the CLI
 * ended it. Never an HTTP status: a finished turn is a 200 whatever its outcome.
 */
export const TURN_ERROR_CODES = [
  'INTERRUPTED',
  'CANCELLED',
  'TURN_TIMEOUT',
  'SERVER_SHUTDOWN',
  'SERVER_RESTARTED',
  'REPLICA_LOST',
  'CLI_EXITED',
  'MAX_TURNS',
  'BUDGET_EXCEEDED',
  'STRUCTURED_OUTPUT_INVALID',
  'MCP_SERVER_FAILED',
  'MODEL_ERROR',
] as const;
export type TurnErrorCode = (typeof TURN_ERROR_CODES)[number];

/** The `error` of a Turn: the code is one of ERROR_CODES or TURN_ERROR_CODES (documented, not enforced on output). */
export const TurnErrorSchema = Type.Object({
  code: Type.String({ description: `One of the request error codes or of: ${TURN_ERROR_CODES.join(', ')}` }),
  message: Type.String(),
});

/** An error the API reports as-is: a code from the closed list and a message for people. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;
  /** Seconds, sent as `Retry-After` with 429 and 503. */
  readonly retryAfter: number | undefined;

  constructor(code: ErrorCode, message: string, opts: { details?: Record<string, unknown>; retryAfter?: number; cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.name = 'AppError';
    this.code = code;
    this.details = opts.details;
    this.retryAfter = opts.retryAfter;
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }
}

export const ErrorBodySchema = Type.Object(
  {
    error: Type.Object({
      code: Type.Union(
        ERROR_CODES.map((c) => Type.Literal(c)),
        { description: 'One of the closed list of error codes' },
      ),
      message: Type.String(),
      request_id: Type.String(),
      details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    }),
  },
  { $id: 'Error', description: 'Every error has this shape' },
);

/** The error responses every route can give, spread into each route's `response`. */
export const commonErrors = {
  400: Type.Ref('Error'),
  401: Type.Ref('Error'),
  413: Type.Ref('Error'),
  429: Type.Ref('Error'),
  500: Type.Ref('Error'),
  503: Type.Ref('Error'),
} as const;

/** What routes that take a prompt add: an attachment of a media type the server does not take (415). */
export const promptErrors = { 415: Type.Ref('Error') } as const;

/** Common errors plus those of routes that address one session. */
export const sessionErrors = { ...commonErrors, 404: Type.Ref('Error'), 409: Type.Ref('Error') } as const;
