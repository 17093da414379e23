/**
 * Entry point of the CNI plugin executable (`cnm cni install` writes a launcher that runs this): the
 * runtime's environment and stdin in, the result or the spec's error JSON on stdout, the exit status.
 */
import { runPlugin } from './plugin.js';

async function readStdin(): Promise<string> {
  // VERSION may come without stdin at all; a terminal is never waited on.
  if (process.stdin.isTTY) return '';
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

readStdin()
  .then((stdin) => runPlugin(process.env, stdin))
  .then(
    ({ stdout, exitCode }) => {
      if (stdout) process.stdout.write(`${stdout}\n`);
      process.exitCode = exitCode;
    },
    (err: unknown) => {
      process.stdout.write(`${JSON.stringify({ cniVersion: '1.1.0', code: 5, msg: err instanceof Error ? err.message : String(err) })}\n`);
      process.exitCode = 1;
    },
  );
