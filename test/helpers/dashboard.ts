import type { ChildProcess } from 'node:child_process';
import { spawnCli, type CliResult } from './cli.js';

export interface DashboardProcess {
  /** http://host:port of the running dashboard. */
  url: string;
  child: ChildProcess;
  done: Promise<CliResult>;
  /** SIGTERM, then the result (exit code 0 expected). */
  stop(): Promise<CliResult>;
}

/** Spawns `pullq dashboard ...args` (the built CLI) and waits for its "dashboard on <url>" line. */
export async function spawnDashboard(args: string[], options: { cwd: string; env: Record<string, string> }): Promise<DashboardProcess> {
  const { child, done } = spawnCli(['dashboard', ...args], options);
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`dashboard did not start within 15 s; stdout: ${out}`)), 15_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /dashboard on (http:\/\/\S+) \(queue /.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    void done.then((r) => {
      clearTimeout(timer);
      reject(new Error(`dashboard exited with ${r.code}: ${r.stderr}`));
    });
  });
  return {
    url,
    child,
    done,
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return done;
    },
  };
}
