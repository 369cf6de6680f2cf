/**
 * @module storage/cursor
 * The opaque cursor of a list paged by (time, id): the position of the last row of a page.
 */
import { AppError } from '../errors.js';

export function encodeCursor(at: number, id: string): string {
  return Buffer.from(`${at}:${id}`).toString('base64url');
}

/** The position a cursor names; 400 for one this server did not give out. */
export function decodeCursor(cursor: string): { at: number; id: string } {
  const m = /^(\d{1,16}):([0-9a-f-]{36})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!m) throw new AppError('INVALID_REQUEST', 'cursor is not one this server gave out');
  return { at: Number(m[1]), id: m[2]! };
}
