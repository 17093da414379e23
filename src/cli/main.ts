/** Entry point of the `cnm` command (bin/cnm): runs the CLI and sets the process's exit status. */
import { main } from './cli.js';

// Setting exitCode does not end the process, so `cnm daemon` keeps serving after main() returns.
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
