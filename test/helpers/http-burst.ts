/**
 * COUNT HTTP GETs of a URL one after another, each on a new connection (a new flow for the balancer), from
 * ONE node process run where the caller runs it (a namespace, a sandbox through `cnm exec`). It prints one
 * line per request: the first line of the body, or FAIL (an error status, a refused or reset connection,
 * no whole answer within the per-request time) — what `for i in $(seq N); do curl -sf -m 2 URL || echo
 * FAIL; done` printed, without two processes (shell fork, curl) per request. On a loaded two-core machine
 * 300 of those spawns took longer than the whole command was given, and the test failed.
 * Names resolve through getaddrinfo (node's dns.lookup), as curl's do: /etc/hosts and resolv.conf.
 */
const SCRIPT = `
const http = require('node:http');
const [url, count, ms, family] = process.argv.slice(1);
const one = () => new Promise((resolve) => {
  let done = false;
  const finish = (line) => { if (!done) { done = true; clearTimeout(timer); resolve(line); } };
  const req = http.get(url, { agent: false, family: Number(family) || undefined }, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (d) => (body += d));
    res.on('end', () => finish(res.statusCode === 200 ? body.split('\\n')[0] : 'FAIL'));
    res.on('error', () => finish('FAIL'));
  });
  const timer = setTimeout(() => { finish('FAIL'); req.destroy(); }, Number(ms));
  req.on('error', () => finish('FAIL'));
});
(async () => {
  for (let i = 0; i < Number(count); i++) process.stdout.write((await one()) + '\\n');
})();
`;

/** The argv to run: `count` requests to `url`, `timeoutMs` each; `family` 4 or 6 resolves names to that family only (curl -4 / -6). */
export function httpBurstArgv(url: string, count: number, opts: { timeoutMs?: number; family?: 4 | 6 } = {}): string[] {
  return [process.execPath, '-e', SCRIPT, url, String(count), String(opts.timeoutMs ?? 2000), String(opts.family ?? 0)];
}

/** Lines of a burst's output counted: answering backend name (or FAIL) → how many. */
export function countLines(stdout: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of stdout.split('\n').filter(Boolean)) counts.set(line, (counts.get(line) ?? 0) + 1);
  return counts;
}
