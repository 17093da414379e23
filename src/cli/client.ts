/** The CLI's HTTP client for the daemon's unix socket. */
import http from 'node:http';
import { UsageError } from './args.js';

export const DEFAULT_SOCKET = '/run/cnm/cnm.sock';

/** The daemon answered with an error status; printed as "Error response from daemon: ...". */
export class DaemonError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The daemon could not be reached at all. */
export class ConnectionError extends Error {}

/** --host, else CNM_HOST, else the default; "unix:///path" and plain absolute paths are accepted. */
export function resolveSocketPath(hostFlag: string | undefined, env: NodeJS.ProcessEnv): string {
  const host = hostFlag || env.CNM_HOST || DEFAULT_SOCKET;
  if (host.startsWith('unix://')) return host.slice('unix://'.length);
  if (host.startsWith('/')) return host;
  throw new UsageError(`invalid host "${host}": only unix sockets are supported (unix:///path)`);
}

export interface RequestOptions {
  query?: Record<string, string | undefined>;
  body?: unknown;
}

export interface ApiResponse {
  status: number;
  /** Parsed JSON body; undefined for empty bodies. */
  body: unknown;
}

export class ApiClient {
  constructor(readonly socketPath: string) {}

  async request(method: string, path: string, opts: RequestOptions = {}): Promise<ApiResponse> {
    const search = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) search.set(k, v);
    const fullPath = search.size > 0 ? `${path}?${search}` : path;
    const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = http.request(
        {
          socketPath: this.socketPath,
          method,
          path: fullPath,
          headers: payload === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (['ENOENT', 'ECONNREFUSED', 'EACCES'].includes(err.code ?? '')) {
          reject(
            new ConnectionError(
              `Cannot connect to the cnm daemon at unix://${this.socketPath}. Is the cnm daemon running? (${err.code})`,
            ),
          );
        } else reject(err);
      });
      req.end(payload);
    });
    const body = parseJson(text);
    if (status >= 400) {
      const message =
        body && typeof body === 'object' && typeof (body as { message?: unknown }).message === 'string'
          ? (body as { message: string }).message
          : text.trim() || `HTTP ${status}`;
      throw new DaemonError(status, message);
    }
    return { status, body };
  }

  async get<T>(path: string, query?: Record<string, string | undefined>): Promise<T> {
    return (await this.request('GET', path, { query })).body as T;
  }

  async post<T>(path: string, body?: unknown, query?: Record<string, string | undefined>): Promise<T> {
    return (await this.request('POST', path, { body, query })).body as T;
  }

  async delete(path: string, query?: Record<string, string | undefined>): Promise<void> {
    await this.request('DELETE', path, { query });
  }
}

function parseJson(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
