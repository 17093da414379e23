/**
 * The request target of an HTTP request, read the way Go's net/http reads it for Docker
 * (url.ParseRequestURI, then url.ParseQuery): a path and its query, or a 400 for anything malformed.
 * Never throws anything but InvalidParameterError, whatever bytes the client sent.
 */
import { InvalidParameterError } from '../errors.js';

export interface RequestTarget {
  /** The raw (still percent-encoded) path: routes match segments, then decode them. */
  path: string;
  query: URLSearchParams;
}

/** An escape that is not % followed by two hex digits. */
const BAD_ESCAPE = /%(?![0-9A-Fa-f]{2})/;
/** absolute-form ("http://host/path"), which HTTP/1.1 servers must accept. */
const ABSOLUTE_FORM = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/;

export function parseRequestTarget(raw: string | undefined): RequestTarget {
  let target = raw ?? '/';
  const absolute = ABSOLUTE_FORM.exec(target);
  if (absolute) target = target.slice(absolute[0].length) || '/';
  if (!target.startsWith('/')) throw invalid('invalid request target', raw ?? '');
  const hash = target.indexOf('#');
  if (hash >= 0) target = target.slice(0, hash);
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  const rawQuery = q < 0 ? '' : target.slice(q + 1);
  if (!decodes(path)) throw invalid('invalid URL escape in path', path);
  for (const pair of rawQuery.split('&')) {
    if (!decodes(pair.replaceAll('+', ' '))) throw invalid('invalid URL escape in query', pair);
  }
  return { path, query: new URLSearchParams(rawQuery) };
}

/** Percent-decoding a path segment or query value: strict, and the result must be UTF-8. */
export function decodeComponent(text: string): string {
  if (BAD_ESCAPE.test(text)) throw invalid('invalid URL escape', text);
  try {
    return decodeURIComponent(text);
  } catch {
    throw invalid('invalid URL escape (not UTF-8)', text);
  }
}

function decodes(text: string): boolean {
  if (BAD_ESCAPE.test(text)) return false;
  try {
    decodeURIComponent(text);
    return true;
  } catch {
    return false;
  }
}

/** The offending text is quoted and cut short: it is the client's, of any length. */
function invalid(what: string, text: string): InvalidParameterError {
  const shown = text.length > 80 ? `${text.slice(0, 80)}...` : text;
  return new InvalidParameterError(`${what}: ${JSON.stringify(shown)}`);
}
