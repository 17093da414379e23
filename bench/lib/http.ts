/**
 * A small keep-alive JSON client over a unix socket, used for both cnm and dockerd so that neither
 * side pays connection set-up in the measured time.
 */
import { Agent, request } from 'node:http';

export interface JsonResponse {
  status: number;
  body: string;
  json<T = any>(): T;
}

export class SocketClient {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 64 });

  constructor(readonly socketPath: string) {}

  call(method: string, path: string, body?: unknown, timeoutMs?: number): Promise<JsonResponse> {
    return this.send(method, path, body === undefined ? undefined : Buffer.from(JSON.stringify(body)), 'application/json', timeoutMs);
  }

  /**
   * A request with a raw body (e.g. a tar stream for image import). It fails after `timeoutMs` without
   * a response, so a daemon that hangs (dockerd busy restoring containers) cannot hang the bench.
   */
  send(method: string, path: string, data: Buffer | undefined, contentType: string, timeoutMs = 600_000): Promise<JsonResponse> {
    return new Promise((resolve, reject) => {
      const req = request(
        {
          socketPath: this.socketPath,
          agent: this.agent,
          timeout: timeoutMs,
          method,
          path,
          headers: data ? { 'content-type': contentType, 'content-length': data.length } : { 'content-length': 0 },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, json: () => JSON.parse(text) }));
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no response in ${timeoutMs} ms`)));
      req.on('error', reject);
      if (data) req.write(data);
      req.end();
    });
  }

  /** Like call, but throws unless the status is 2xx. */
  async ok(method: string, path: string, body?: unknown, timeoutMs?: number): Promise<JsonResponse> {
    const r = await this.call(method, path, body, timeoutMs);
    if (r.status < 200 || r.status > 299) throw new Error(`${method} ${path} → ${r.status}: ${r.body}`);
    return r;
  }

  close(): void {
    this.agent.destroy();
  }
}
