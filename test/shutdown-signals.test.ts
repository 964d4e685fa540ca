import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI } from './helpers/cli.js';

// The CLI's last resort (src/cli/shutdown-signals.ts): whatever still hangs after SIGTERM (a Redis that never answers)
// cannot keep `pullq worker` or `pullq pull` past worker.shutdownTimeoutMs + 10 s. test/shutdown-bound.test.ts shows
// the graceful path ending in time on its own; this one, the net under it, in a process whose stop never ends.

describe('onShutdownSignals', () => {
  it('the last resort: a graceful path that never ends is cut at shutdownTimeoutMs + 9 s, with one line and the graceful exit code', async () => {
    // A process whose graceful stop hangs for good (a ref'd timer, as a reconnecting Redis client keeps one).
    const signals = path.join(path.dirname(CLI), 'shutdown-signals.js');
    const script = `import { onShutdownSignals } from ${JSON.stringify(signals)};
      setInterval(() => {}, 1000);
      onShutdownSignals(() => {}, (m) => console.error(m), { shutdownTimeoutMs: 500, exitCode: () => 3, log: (m) => console.error('last:', m) });
      console.log('ready');`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    const started = Date.now();
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    clearTimeout(timer);
    const tookMs = Date.now() - started;
    console.log(`last resort: exit ${code} after ${tookMs} ms`);
    expect(code).toBe(3);
    expect(tookMs).toBeGreaterThanOrEqual(9_000);
    expect(tookMs).toBeLessThan(500 + 10_000);
    expect(stderr.match(/^last: shutdown did not finish within 9500 ms of SIGTERM/gm)).toHaveLength(1);
  });
});
