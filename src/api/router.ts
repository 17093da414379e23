/**
 * A small method + path router with `{param}` segments, and Docker's `/v1.XX` path prefix handling.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { InvalidParameterError } from '../errors.js';
import { decodeComponent } from './request-target.js';

/** Highest Engine API version served (Docker 28.x clients speak 1.50 and negotiate down from this). */
export const API_VERSION = '1.51';
/** Lowest Engine API version served. */
export const MIN_API_VERSION = '1.40';

export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  /** URL-decoded `{param}` values (a bad escape is a 400). */
  params: Record<string, string>;
  query: URLSearchParams;
  /** The version the client asked for in the path, or API_VERSION for unversioned paths. */
  apiVersion: string;
}

export type RouteHandler = (ctx: RouteContext) => Promise<void> | void;

export interface Route {
  method: string;
  /** e.g. "/networks/{id}/connect". */
  pattern: string;
  handler: RouteHandler;
}

interface CompiledRoute extends Route {
  regex: RegExp;
  names: string[];
}

export type RouteMatch =
  | { kind: 'found'; handler: RouteHandler; params: Record<string, string> }
  | { kind: 'method-not-allowed' }
  | { kind: 'not-found' };

export class Router {
  private readonly routes: CompiledRoute[];

  constructor(routes: Route[]) {
    this.routes = routes.map(compile);
  }

  match(method: string, path: string): RouteMatch {
    let pathMatched = false;
    for (const route of this.routes) {
      const m = route.regex.exec(path);
      if (!m) continue;
      pathMatched = true;
      if (route.method !== method) continue;
      const params: Record<string, string> = {};
      route.names.forEach((name, i) => {
        params[name] = decodeComponent(m[i + 1]!);
      });
      return { kind: 'found', handler: route.handler, params };
    }
    return pathMatched ? { kind: 'method-not-allowed' } : { kind: 'not-found' };
  }
}

function compile(route: Route): CompiledRoute {
  const names: string[] = [];
  const source = route.pattern
    .split('/')
    .map((segment) => {
      const param = /^\{(\w+)\}$/.exec(segment);
      if (!param) return segment.replace(/[.*+?^$()|[\]\\]/g, '\\$&');
      names.push(param[1]!);
      return '([^/]+)';
    })
    .join('/');
  return { ...route, regex: new RegExp(`^${source}/?$`), names };
}

/**
 * Split "/v1.50/networks" into version "1.50" and path "/networks"; unversioned paths get API_VERSION.
 * Throws Docker's 400 when the version is outside [MIN_API_VERSION, API_VERSION].
 */
export function splitVersion(path: string): { apiVersion: string; path: string } {
  const m = /^\/v([0-9.]+)(\/.*)?$/.exec(path);
  if (!m) return { apiVersion: API_VERSION, path };
  const apiVersion = m[1]!;
  if (compareVersions(apiVersion, MIN_API_VERSION) < 0) {
    throw new InvalidParameterError(
      `client version ${apiVersion} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`,
    );
  }
  if (compareVersions(apiVersion, API_VERSION) > 0) {
    throw new InvalidParameterError(`client version ${apiVersion} is too new. Maximum supported API version is ${API_VERSION}`);
  }
  return { apiVersion, path: m[2] ?? '/' };
}

/** Docker's versions.compare: dotted numeric components, missing ones count as 0. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.');
  const pb = b.split('.');
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = Number.parseInt(pa[i] ?? '0', 10) || 0;
    const y = Number.parseInt(pb[i] ?? '0', 10) || 0;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}
