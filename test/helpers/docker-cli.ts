/**
 * The real docker CLI against a test's own dockerd socket, with a client config directory of its own
 * (nothing read from or written to the machine's ~/.docker).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';

export interface DockerCli {
  /** Runs `docker -H unix://SOCKET ARGS`: its exit code and output (a spawn failure rejects). */
  docker(socket: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  /** The same, which must exit 0: its trimmed stdout. */
  dockerOk(socket: string, args: string[]): Promise<string>;
}

export function dockerCli(configDir: string): DockerCli {
  const docker: DockerCli['docker'] = (socket, args) =>
    new Promise((resolve, reject) => {
      const p = spawn('docker', ['-H', `unix://${socket}`, ...args], {
        env: { ...process.env, DOCKER_CONFIG: configDir },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (x) => (stdout += x));
      p.stderr.on('data', (x) => (stderr += x));
      p.once('error', reject);
      p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });
  return {
    docker,
    async dockerOk(socket, args) {
      const r = await docker(socket, args);
      assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
      return r.stdout.trim();
    },
  };
}
