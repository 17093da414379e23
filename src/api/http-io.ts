/**
 * Request bodies and responses: bounded JSON reading and Docker's JSON response conventions.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { InvalidParameterError } from '../errors.js';

/** Largest JSON request body accepted. */
export const MAX_BODY_BYTES = 1024 * 1024;

/** Thrown when a body exceeds the limit; the server discards the rest of it instead of buffering. */
export class BodyTooLargeError extends InvalidParameterError {}

/**
 * Read and parse a JSON body. An empty body yields `undefined` (Docker treats it as "all defaults").
 * Bodies over `limit` bytes are rejected without buffering more than `limit` bytes.
 */
export async function readJsonBody(req: IncomingMessage, limit = MAX_BODY_BYTES, mediaTypes: readonly string[] = JSON_ONLY): Promise<unknown> {
  checkContentType(req, mediaTypes);
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > limit) {
    discardBody(req);
    throw tooLarge(limit);
  }
  // Handlers start inside the HTTP parser's 'request' event, before it has read on: a body that came
  // with the head is in the request's buffer once the parser is done with the data (a microtask later).
  if (!req.complete) await undefined;
  const text = takeBufferedBody(req, limit) ?? (await readBounded(req, limit));
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new InvalidParameterError(`invalid JSON: ${(err as Error).message}`);
  }
}

/**
 * The whole body when the parser has it already (a small request arrives in one piece with its head):
 * taken from the stream's buffer at once instead of over its data and end events (a few turns of the
 * event loop). Undefined otherwise, and for more than `limit` bytes (readBounded refuses those).
 */
function takeBufferedBody(req: IncomingMessage, limit: number): string | undefined {
  const declared = Number(req.headers['content-length'] ?? NaN);
  const whole = req.complete || (Number.isFinite(declared) && req.readableLength === declared);
  if (!whole || req.readableFlowing === true || req.readableLength > limit) return undefined;
  const chunks: Buffer[] = [];
  for (let chunk: Buffer | null = req.read(); chunk !== null; chunk = req.read()) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

/** Past this much discarded body the connection is cut instead of read to the end. */
const MAX_DISCARD_BYTES = 64 * MAX_BODY_BYTES;

/**
 * Collect at most `limit` bytes. Beyond that the promise fails and the rest is read and dropped
 * (so the client can still receive the 400) — up to MAX_DISCARD_BYTES, then the socket is destroyed.
 */
function readBounded(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const onData = (chunk: Buffer) => {
      total += chunk.length;
      if (total <= limit) {
        chunks.push(chunk);
        return;
      }
      req.off('data', onData);
      chunks.length = 0;
      discardBody(req);
      reject(tooLarge(limit));
    };
    req.on('data', onData);
    req.on('end', () => {
      if (total <= limit) resolve(Buffer.concat(chunks).toString('utf8'));
    });
    // The client went away or was cut (request timeout) mid-body: its fault, not a daemon error.
    const gone = () => reject(new InvalidParameterError('request body not received: the connection was closed'));
    req.on('error', gone);
    req.on('close', () => {
      if (!req.complete) gone();
    });
  });
}

function discardBody(req: IncomingMessage): void {
  let discarded = 0;
  req.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > MAX_DISCARD_BYTES) req.socket.destroy();
  });
  req.resume();
}

function tooLarge(limit: number): BodyTooLargeError {
  return new BodyTooLargeError(`request body too large: the limit is ${limit} bytes`);
}

/**
 * Docker insists on application/json when a body is sent. A missing Content-Type is tolerated
 * (curl without -H) — only an explicit, different media type is refused.
 */
const JSON_ONLY = ['application/json'];

function checkContentType(req: IncomingMessage, mediaTypes: readonly string[]): void {
  const contentType = req.headers['content-type'];
  if (!contentType) return;
  const mediaType = contentType.split(';')[0]!.trim().toLowerCase();
  if (!mediaTypes.includes(mediaType)) {
    throw new InvalidParameterError(`unsupported Content-Type header (${contentType}): must be ${mediaTypes.map((t) => `'${t}'`).join(' or ')}`);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body) + '\n';
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** A pre-serialised JSON text (used where bigint nanoseconds must stay exact). */
export function sendJsonText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

export function sendEmpty(res: ServerResponse, status: number): void {
  res.writeHead(status);
  res.end();
}

export function sendErrorMessage(res: ServerResponse, status: number, message: string): void {
  sendJson(res, status, { message });
}

/** Docker's boolean query values: 1/true/True/TRUE (and 0/false...); anything else is an error. */
export function queryBool(query: URLSearchParams, name: string): boolean {
  const value = query.get(name);
  if (value === null || value === '') return false;
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(value)) return false;
  throw new InvalidParameterError(`invalid value for ${name}: ${value}`);
}
