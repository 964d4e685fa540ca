import { spawn, type ChildProcess } from 'node:child_process';

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** From spawn to exit. */
  wallMs: number;
  /** Whole stdout (kept only with `keepStdout`), and the last lines of stderr. */
  stdout: string;
  stderrTail: string[];
  stderrLines: number;
  /** stderr lines containing `countSubstring`. */
  stderrMatches: number;
}

export interface Child {
  child: ChildProcess;
  label: string;
  startedAt: number;
  done: Promise<ChildResult>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<ChildResult>;
}

/** Children still running: killed if the benchmark process exits (Ctrl-C, a crash) so no worker is left behind. */
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/**
 * Starts a child process for the benchmarks with a minimal environment, keeps
 * the tail of its stderr for diagnostics, and times it from spawn to exit.
 */
export function spawnChild(command: string, args: string[], options: { label: string; env?: Record<string, string>; cwd?: string; keepStdout?: boolean; ipc?: boolean; countSubstring?: string; /** SIGKILL after this long (a bound on every run). */ timeoutMs?: number }): Child {
  const startedAt = Date.now();
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '', ...options.env },
    stdio: options.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  const killer = options.timeoutMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
  let stdout = '';
  const tail: string[] = [];
  let lines = 0;
  let matches = 0;
  let partial = '';
  child.stdout!.on('data', (d: Buffer) => {
    if (options.keepStdout) stdout += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop() ?? '';
    for (const l of parts) {
      lines++;
      if (options.countSubstring && l.includes(options.countSubstring)) matches++;
      tail.push(l);
      if (tail.length > 30) tail.shift();
    }
  });
  const done = new Promise<ChildResult>((resolve) => {
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      live.delete(child);
      if (killer) clearTimeout(killer);
      if (partial) {
        tail.push(partial);
        lines++;
      }
      resolve({ code, signal, wallMs: Date.now() - startedAt, stdout, stderrTail: tail, stderrLines: lines, stderrMatches: matches });
    };
    child.once('error', () => finish(null, null));
    child.once('close', finish);
  });
  let exited = false;
  void done.then(() => (exited = true));
  return {
    child,
    label: options.label,
    startedAt,
    done,
    async stop(graceMs = 5000) {
      if (!exited) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => {
          if (!exited) child.kill('SIGKILL');
        }, graceMs);
        const r = await done;
        clearTimeout(timer);
        return r;
      }
      return done;
    },
  };
}
