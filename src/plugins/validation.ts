/**
 * @module plugins/validation
 * Two Ajv instances: query strings, params and headers are coerced from text (limit=10),
 * bodies are not (a prompt sent as a number is a 400, not "123"). Unknown body fields are
 * refused, never silently dropped, and defaults are filled in.
 */
import { Ajv } from 'ajv';
import addFormatsImport from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';

const addFormats = addFormatsImport as unknown as (ajv: Ajv) => Ajv;

function make(coerce: boolean): Ajv {
  const ajv = new Ajv({ coerceTypes: coerce ? 'array' : false, useDefaults: true, removeAdditional: false, allErrors: false, strict: false });
  addFormats(ajv);
  return ajv;
}

const bodyAjv = make(false);
const textAjv = make(true);

export const validatorCompiler: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) => {
  const ajv = httpPart === 'body' ? bodyAjv : textAjv;
  return ajv.compile(schema as object) as ReturnType<FastifySchemaCompiler<unknown>>;
};

/** Shared schemas ($id) must be known to both instances. */
export function addSharedSchema(schema: { $id: string }): void {
  for (const ajv of [bodyAjv, textAjv]) if (!ajv.getSchema(schema.$id)) ajv.addSchema(schema);
}
