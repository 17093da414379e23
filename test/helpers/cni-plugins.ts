/**
 * Running CNI plugins as a runtime runs them (CNI_* environment, configuration on stdin), inside the
 * daemon's namespace: runtime and daemon share the host namespace. Debian's containernetworking-plugins
 * (portmap, bandwidth) live in CNI_PLUGINS.
 */
import { spawn } from 'node:child_process';

/** Debian's containernetworking-plugins. */
export const CNI_PLUGINS = '/usr/lib/cni';

export interface PluginRun {
  code: number;
  stdout: string;
  stderr: string;
  json(): any;
}

/** Run one plugin binary inside the namespace at `hostNsPath`. */
export function runPluginIn(hostNsPath: string, binary: string, env: Record<string, string>, stdin: string): Promise<PluginRun> {
  return new Promise((resolve, reject) => {
    const p = spawn('nsenter', [`--net=${hostNsPath}`, binary], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.once('error', reject);
    p.once('close', (code) => resolve({ code: code ?? -1, stdout, stderr, json: () => JSON.parse(stdout) }));
    p.stdin.end(stdin);
  });
}
