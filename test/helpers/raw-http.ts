/** Raw HTTP over a unix socket, for requests no well-behaved client library would send. */
import { createConnection } from 'node:net';

export interface RawResponse {
  status: number;
  text: string;
  /** The server closed the connection (false: we gave up waiting). */
  closed: boolean;
}

/**
 * Send raw bytes, collect everything until the server closes. A connection that ends without a status
 * line, or that gets no answer within `waitMs` (a stalled daemon), is reported as status 0.
 */
export function rawRequest(socket: string, data: string | Buffer, waitMs = 20_000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const s = createConnection(socket);
    const chunks: Buffer[] = [];
    let closed = false;
    const done = () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3}) /.exec(text);
      resolve({ status: m ? Number(m[1]) : 0, text, closed });
    };
    const timer = setTimeout(() => {
      s.destroy();
      done();
    }, waitMs);
    s.on('data', (c) => chunks.push(c));
    s.on('end', () => (closed = true));
    s.on('close', (hadError) => {
      if (hadError) closed = true;
      done();
    });
    s.on('error', (err: NodeJS.ErrnoException) => {
      // A reset after the answer was read is the server closing a broken stream: the answer counts.
      if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE') reject(err);
    });
    s.write(data);
  });
}

/** The JSON {"message"} of a raw response (the body after the blank line; chunked bodies unwrapped). */
export function messageOf(r: RawResponse): string {
  const body = r.text.slice(r.text.indexOf('\r\n\r\n') + 4);
  const json = body.startsWith('{') ? body : (body.split('\r\n')[1] ?? '');
  return (JSON.parse(json) as { message: string }).message;
}
