/**
 * @module turns/prompt
 * A prompt as a client sends it (text, or content blocks with images and PDF documents), checked
 * and made ready to store and run: its text, its blocks, and a summary of its attachments. An
 * attachment must be of a media type the model takes (415), its bytes must be that type (415), and
 * it must fit MAX_ATTACHMENT_BYTES (413); MAX_ATTACHMENTS bounds how many.
 */
import { AppError } from '../errors.js';
import type { AttachmentSummary, ContentBlock, Prompt } from './schemas.js';

export interface PromptLimits {
  maxPromptChars: number;
  maxAttachmentBytes: number;
  maxAttachments: number;
}

export interface PreparedPrompt {
  /** The prompt's text (its text blocks, joined). */
  text: string;
  /** JSON text of the blocks, when the prompt has attachments (null: plain text). */
  content: string | null;
  /** JSON text of the attachments' summary (null: none). */
  attachments: string | null;
}

/** Media types the model takes, and how their bytes begin. */
const SIGNATURES: Record<string, { block: 'image' | 'document'; starts: (b: Buffer) => boolean }> = {
  'image/png': { block: 'image', starts: (b) => b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) },
  'image/jpeg': { block: 'image', starts: (b) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff },
  'image/gif': { block: 'image', starts: (b) => b.subarray(0, 4).toString('latin1') === 'GIF8' },
  'image/webp': { block: 'image', starts: (b) => b.subarray(0, 4).toString('latin1') === 'RIFF' && b.subarray(8, 12).toString('latin1') === 'WEBP' },
  'application/pdf': { block: 'document', starts: (b) => b.subarray(0, 5).toString('latin1') === '%PDF-' },
};
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export const ATTACHMENT_TYPES = Object.keys(SIGNATURES);

function checkAttachment(b: Exclude<ContentBlock, { type: 'text' }>, i: number, limits: PromptLimits): AttachmentSummary {
  const field = `body.prompt[${i}].source`;
  const mediaType = b.source.media_type.toLowerCase();
  const sig = SIGNATURES[mediaType];
  if (!sig || sig.block !== b.type) {
    const takes = ATTACHMENT_TYPES.filter((t) => SIGNATURES[t]!.block === b.type).join(', ');
    throw new AppError('UNSUPPORTED_MEDIA_TYPE', `${field}.media_type: ${b.source.media_type} is not a media type an ${b.type} may have here (${takes})`, {
      details: { field: `${field}.media_type` },
    });
  }
  const data = b.source.data;
  if (data.length % 4 !== 0 || !BASE64.test(data)) {
    throw new AppError('INVALID_REQUEST', `${field}.data: is not base64`, { details: { field: `${field}.data` } });
  }
  const bytes = (data.length / 4) * 3 - (data.endsWith('==') ? 2 : data.endsWith('=') ? 1 : 0);
  if (bytes > limits.maxAttachmentBytes) {
    throw new AppError('PAYLOAD_TOO_LARGE', `${field}: the ${b.type} is ${bytes} bytes; the limit is ${limits.maxAttachmentBytes} (MAX_ATTACHMENT_BYTES)`, {
      details: { field: `${field}.data` },
    });
  }
  if (!sig.starts(Buffer.from(data.slice(0, 16), 'base64'))) {
    throw new AppError('UNSUPPORTED_MEDIA_TYPE', `${field}.data: the bytes are not ${mediaType}`, { details: { field: `${field}.data` } });
  }
  return { type: b.type, media_type: mediaType, bytes };
}

/** Checks a prompt; throws 400, 413 or 415 with the field that is wrong. */
export function preparePrompt(prompt: Prompt, limits: PromptLimits): PreparedPrompt {
  if (typeof prompt === 'string') {
    if (prompt.length > limits.maxPromptChars) {
      throw new AppError('PAYLOAD_TOO_LARGE', `prompt is ${prompt.length} characters; the limit is ${limits.maxPromptChars}`);
    }
    return { text: prompt, content: null, attachments: null };
  }
  const texts: string[] = [];
  const summary: AttachmentSummary[] = [];
  prompt.forEach((b, i) => {
    if (b.type === 'text') texts.push(b.text);
    else summary.push(checkAttachment(b, i, limits));
  });
  if (summary.length > limits.maxAttachments) {
    throw new AppError('PAYLOAD_TOO_LARGE', `the prompt has ${summary.length} attachments; the limit is ${limits.maxAttachments} (MAX_ATTACHMENTS)`);
  }
  const text = texts.join('\n\n');
  if (text.length > limits.maxPromptChars)
    throw new AppError('PAYLOAD_TOO_LARGE', `prompt is ${text.length} characters; the limit is ${limits.maxPromptChars}`);
  if (summary.length === 0) return { text, content: null, attachments: null };
  const blocks = prompt.map((b) => (b.type === 'text' ? b : { ...b, source: { ...b.source, media_type: b.source.media_type.toLowerCase() } }));
  return { text, content: JSON.stringify(blocks), attachments: JSON.stringify(summary) };
}

/** The body limit of a route that takes a prompt: the usual one plus room for its attachments in base64. */
export const promptBodyLimit = (bodyLimit: number, limits: Pick<PromptLimits, 'maxAttachmentBytes' | 'maxAttachments'>) =>
  bodyLimit + Math.ceil((limits.maxAttachmentBytes * 4) / 3 + 1024) * limits.maxAttachments;
