/**
 * @module files/routes
 * The files of a session's folder over HTTP: list, read (Range, ETag, If-None-Match), write
 * (If-Match, If-None-Match), delete, and a folder as tar.gz. A write's body is the file's bytes,
 * whatever its content type, streamed to disk.
 */
import { Type } from 'typebox';
import type { App } from '../types.js';
import { AppError, sessionErrors } from '../errors.js';
import { SessionParamsSchema } from '../schemas.js';
import { TurnParamsSchema } from '../turns/schemas.js';
import type { FileService } from './service.js';
import type { Caller } from '../auth/access.js';

const tags = ['files'];
const SessionRef = Type.Ref('Session');
const FilePath = Type.String({ maxLength: 4096, default: '', description: "A path relative to the session's folder ('' is the folder itself)" });
const FileEntrySchema = Type.Object({
  name: Type.String(),
  path: Type.String({ description: "Relative to the session's folder" }),
  type: Type.Union([Type.Literal('file'), Type.Literal('directory'), Type.Literal('symlink'), Type.Literal('other')]),
  size: Type.Union([Type.Integer(), Type.Null()]),
  mtime: Type.String({ format: 'date-time' }),
  etag: Type.Union([Type.String(), Type.Null()]),
});
const binary = (description: string) => ({ description, content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } });
/** A user's file never runs as a page of this origin (HTML, SVG) and is never sniffed into one. */
const SAFE_HEADERS = { 'content-security-policy': "default-src 'none'; sandbox", 'x-content-type-options': 'nosniff' };

export async function fileRoutes(
  app: App,
  opts: {
    files: FileService;
    /**
     * The sessions' prepareForkBefore (rewind's `fork`): checks and finds where a session whose
     * conversation ends before the turn would end; the returned call makes it.
     */
    prepareFork: (caller: Caller, sessionId: string, turnId: string) => Promise<() => Promise<unknown>>;
  },
) {
  const svc = opts.files;
  // A write's body is the file's bytes, whatever its content type (JSON too): streamed, never parsed.
  await app.register(async (raw: App) => {
    raw.removeAllContentTypeParsers();
    raw.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
    raw.put('/v1/sessions/:session_id/files/content', {
      schema: {
        tags,
        operationId: 'writeFile',
        summary: 'Write a file (its folders are made): the body is its bytes; If-Match guards against lost updates, If-None-Match: * creates only',
        params: SessionParamsSchema,
        querystring: Type.Object({ path: FilePath }, { additionalProperties: false }),
        // Any schema here would be applied to the stream itself: the document says what the body is, nothing checks it.
        body: { description: "The file's bytes (any content type)", content: { 'application/octet-stream': { schema: { description: 'binary' } } } } as never,
        response: { 200: FileEntrySchema, 201: FileEntrySchema, 412: Type.Ref('Error'), ...sessionErrors },
      },
      handler: async (req, reply) => {
        const body = req.body as NodeJS.ReadableStream | undefined;
        if (!body || typeof (body as { pipe?: unknown }).pipe !== 'function') throw new AppError('INVALID_REQUEST', "the body must be the file's bytes");
        const declared = Number(req.headers['content-length'] ?? NaN);
        if (declared > svc.maxFileBytes) {
          void reply.header('connection', 'close');
          throw new AppError('PAYLOAD_TOO_LARGE', `the file is larger than ${svc.maxFileBytes} bytes (MAX_FILE_BYTES)`);
        }
        const written = await svc
          .write(req.caller, req.params.session_id, req.query.path, body as never, {
            ifMatch: req.headers['if-match'],
            ifNoneMatch: req.headers['if-none-match'],
          })
          .catch((err: unknown) => {
            // The rest of a refused body is not read: the connection closes after the answer.
            if (!req.raw.complete) void reply.header('connection', 'close');
            throw err;
          });
        const { entry, created } = written;
        return reply
          .code(created ? 201 : 200)
          .header('etag', entry.etag ?? '')
          .send(entry);
      },
    });
  });

  app.get('/v1/sessions/:session_id/files', {
    schema: {
      tags,
      operationId: 'listFiles',
      summary: "A folder of the session's folder, by name, paged",
      params: SessionParamsSchema,
      querystring: Type.Object(
        {
          path: FilePath,
          limit: Type.Integer({ minimum: 1, maximum: 1000, default: 200 }),
          cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 2048, description: 'next_cursor of the previous page' })),
        },
        { additionalProperties: false },
      ),
      response: {
        200: Type.Object({ path: Type.String(), entries: Type.Array(FileEntrySchema), next_cursor: Type.Union([Type.String(), Type.Null()]) }),
        ...sessionErrors,
      },
    },
    handler: async (req) => svc.list(req.caller, req.params.session_id, req.query),
  });

  app.get('/v1/sessions/:session_id/files/content', {
    schema: {
      tags,
      operationId: 'readFile',
      summary: 'A file: its bytes, with a byte range (Range), an ETag and If-None-Match',
      params: SessionParamsSchema,
      querystring: Type.Object(
        { path: FilePath, download: Type.Boolean({ default: false, description: 'Content-Disposition: attachment' }) },
        { additionalProperties: false },
      ),
      response: {
        200: binary('The whole file'),
        206: binary('The range asked for'),
        304: { description: 'Not modified (If-None-Match)', type: 'null' },
        416: Type.Ref('Error'),
        ...sessionErrors,
      },
    },
    handler: async (req, reply) => {
      const inm = req.headers['if-none-match'];
      if (inm) {
        const etag = await svc.etagOf(req.caller, req.params.session_id, req.query.path);
        if (etag && inm.split(',').some((t) => t.trim().replace(/^W\//, '') === etag || t.trim() === '*')) return reply.code(304).header('etag', etag).send();
      }
      let f;
      try {
        f = await svc.read(req.caller, req.params.session_id, req.query.path, req.headers.range);
      } catch (err) {
        if (err instanceof AppError && err.code === 'RANGE_NOT_SATISFIABLE') reply.header('content-range', String(err.details?.content_range));
        throw err;
      }
      reply
        .headers(SAFE_HEADERS)
        .header('content-type', f.contentType)
        .header('etag', f.etag)
        .header('last-modified', f.mtime.toUTCString())
        .header('accept-ranges', 'bytes')
        .header('content-length', f.length);
      if (req.query.download) reply.header('content-disposition', `attachment; filename*=UTF-8''${encodeURIComponent(f.name)}`);
      if (f.range) reply.code(206).header('content-range', `bytes ${f.range.start}-${f.range.end}/${f.size}`);
      return reply.send(f.stream);
    },
  });

  app.delete('/v1/sessions/:session_id/files/content', {
    schema: {
      tags,
      operationId: 'deleteFile',
      summary: 'Delete a file, a link, or a folder (recursive=true for one that is not empty)',
      params: SessionParamsSchema,
      querystring: Type.Object({ path: FilePath, recursive: Type.Boolean({ default: false }) }, { additionalProperties: false }),
      response: { 200: Type.Object({ path: Type.String(), type: FileEntrySchema.properties.type }), ...sessionErrors },
    },
    handler: async (req) => svc.remove(req.caller, req.params.session_id, req.query.path, req.query.recursive),
  });

  app.get('/v1/sessions/:session_id/files/archive', {
    schema: {
      tags,
      operationId: 'archiveFiles',
      summary: 'A folder as a tar.gz, streamed (links are stored as links, never followed)',
      params: SessionParamsSchema,
      querystring: Type.Object({ path: FilePath }, { additionalProperties: false }),
      response: {
        200: { description: 'gzip-compressed tar', content: { 'application/gzip': { schema: { type: 'string', format: 'binary' } } } },
        ...sessionErrors,
      },
    },
    handler: async (req, reply) => {
      const a = await svc.archive(req.caller, req.params.session_id, req.query.path);
      return reply
        .headers(SAFE_HEADERS)
        .header('content-type', 'application/gzip')
        .header('content-disposition', `attachment; filename*=UTF-8''${encodeURIComponent(a.name)}`)
        .send(a.stream);
    },
  });

  const ChangeSchema = Type.Object({
    path: Type.String(),
    kind: Type.Union([Type.Literal('created'), Type.Literal('modified'), Type.Literal('deleted')]),
    size_before: Type.Union([Type.Integer(), Type.Null()]),
    size_after: Type.Union([Type.Integer(), Type.Null()]),
  });

  app.get('/v1/sessions/:session_id/turns/:turn_id/changes', {
    schema: {
      tags,
      operationId: 'getTurnChanges',
      summary: "What a turn changed in the session's folder (whatever changed it: Edit, Write, Bash...), with unified diffs of text files",
      params: TurnParamsSchema,
      querystring: Type.Object(
        {
          max_diff_bytes: Type.Integer({
            minimum: 0,
            maximum: 10_485_760,
            default: 262_144,
            description: 'Files larger than this (before or after) get no diff; 0: no diffs',
          }),
        },
        { additionalProperties: false },
      ),
      response: {
        200: Type.Object({
          turn_id: Type.String({ format: 'uuid' }),
          recorded: Type.Boolean({ description: "false: the folder's states were not recorded for this turn" }),
          files: Type.Array(Type.Intersect([ChangeSchema, Type.Object({ diff: Type.Union([Type.String(), Type.Null()]) })])),
        }),
        ...sessionErrors,
      },
    },
    handler: async (req) => svc.changes(req.caller, req.params.session_id, req.params.turn_id, req.query.max_diff_bytes),
  });

  app.post('/v1/sessions/:session_id/rewind', {
    schema: {
      tags,
      operationId: 'rewindFiles',
      summary:
        "Put the session's files back as they were before a turn (409 while a turn runs); dry_run says what would change; fork also starts a new session whose conversation ends before that turn",
      params: SessionParamsSchema,
      body: Type.Object(
        {
          turn_id: Type.String({ format: 'uuid' }),
          dry_run: Type.Boolean({ default: false }),
          fork: Type.Boolean({
            default: false,
            description:
              'Also make a new session (same folder, settings and agent) whose conversation ends just before the turn: "undo that turn" in one call. The original session keeps its conversation',
          }),
        },
        { additionalProperties: false },
      ),
      response: {
        200: Type.Object({
          turn_id: Type.String({ format: 'uuid' }),
          dry_run: Type.Boolean(),
          files: Type.Array(ChangeSchema, { description: 'What the rewind changed (or would change)' }),
          session: Type.Union([SessionRef, Type.Null()], { description: 'The fork (with fork: true, unless dry_run)' }),
        }),
        ...sessionErrors,
      },
    },
    handler: async (req) => {
      const { session_id: sid } = req.params;
      const { turn_id: turnId, dry_run: dryRun, fork } = req.body;
      // The fork point is found before the files change (a fork that cannot be made refuses the rewind too),
      // and the fork made after them (a refused rewind leaves no fork).
      const makeFork = fork && !dryRun ? await opts.prepareFork(req.caller, sid, turnId) : null;
      const rewound = await svc.rewind(req.caller, sid, turnId, dryRun);
      const session = makeFork ? await makeFork() : null;
      return { ...rewound, session };
    },
  });
}
