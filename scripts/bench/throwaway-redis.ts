import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { freePort } from '../local-redis.js';

export interface ThrowawayRedis {
  url: string;
  redis: Redis;
  stop(): Promise<void>;
  /** SIGKILL, then a new redis-server on the same port and directory (with `aofDir`, what was acknowledged is back). */
  crashAndRestart(downMs: number): Promise<void>;
}

/**
 * A fresh, empty redis-server on a free port: no persistence (clean used_memory
 * figures), or with `aofDir` an append-only file fsynced on every write, so a
 * SIGKILLed Redis comes back with everything it acknowledged.
 */
export async function startThrowawayRedis(options: { aofDir?: string } = {}): Promise<ThrowawayRedis> {
  const port = await freePort();
  const persistence = options.aofDir ? ['--dir', options.aofDir, '--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
  const launch = () => {
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence, '--maxmemory-policy', 'noeviction'], { stdio: 'ignore' });
    child.once('error', () => undefined);
    return { child, exited: new Promise<void>((resolve) => child.once('exit', () => resolve())) };
  };
  let server = launch();
  const url = `redis://127.0.0.1:${port}`;
  const answers = async () => {
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      return (await probe.ping()) === 'PONG';
    } catch {
      return false;
    } finally {
      probe.disconnect();
    }
  };
  const waitUp = async () => {
    for (let i = 0; i < 100; i++) {
      if (await answers()) return;
      await sleep(100);
    }
    server.child.kill('SIGKILL');
    throw new Error('redis-server did not start (is it installed?)');
  };
  await waitUp();
  const redis = new Redis(url, { maxRetriesPerRequest: null, retryStrategy: () => 100 });
  redis.on('error', () => undefined);
  return {
    url,
    redis,
    async stop() {
      redis.disconnect();
      server.child.kill('SIGTERM');
      const t = setTimeout(() => server.child.kill('SIGKILL'), 5000);
      await server.exited;
      clearTimeout(t);
    },
    async crashAndRestart(downMs) {
      server.child.kill('SIGKILL');
      await server.exited;
      await sleep(downMs);
      server = launch();
      await waitUp();
    },
  };
}
