/**
 * What one client may cost the daemon. Enforced by node:http (timeouts, header size, connection cap)
 * and by the event stream (bytes queued for a reader that does not read).
 */
export interface ApiLimits {
  /** Time to receive a request's headers (slowloris). */
  headersTimeoutMs: number;
  /** Time to receive a whole request, body included. Responses (an /events stream) are not limited. */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this long. */
  keepAliveTimeoutMs: number;
  /** Connections open at once; more are closed as soon as they are accepted (--max-connections). */
  maxConnections: number;
  /** Request line and headers together. */
  maxHeaderBytes: number;
  /** An /events reader with more than this many bytes not yet taken from its socket is disconnected. */
  maxEventBacklogBytes: number;
}

export const DEFAULT_API_LIMITS: ApiLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 512,
  maxHeaderBytes: 16 * 1024,
  maxEventBacklogBytes: 256 * 1024,
};

/** How often node:http checks the header and request timeouts (its default, 30 s, would let them run late). */
export const TIMEOUT_CHECK_INTERVAL_MS = 1_000;

/** node:http server options carrying the limits (shared by the Engine API and the Docker plugin socket). */
export function httpServerOptions(limits: ApiLimits): import('node:http').ServerOptions {
  return {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    maxHeaderSize: limits.maxHeaderBytes,
    connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS,
    // A Host header means nothing on a unix socket; node's own 400 for its absence has no message.
    requireHostHeader: false,
  };
}
