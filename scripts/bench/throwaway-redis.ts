import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { freePort } from '../local-redis.js';

/** A fresh, empty redis-server on a free port (no persistence), for clean used_memory figures. */
export async function startThrowawayRedis(): Promise<{ url: string; redis: Redis; stop(): Promise<void> }> {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('error', () => undefined);
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 50; i++) {
    const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
    redis.on('error', () => undefined);
    try {
      await redis.connect();
      if ((await redis.ping()) === 'PONG') {
        return {
          url,
          redis,
          async stop() {
            redis.disconnect();
            child.kill('SIGTERM');
            const t = setTimeout(() => child.kill('SIGKILL'), 5000);
            await exited;
            clearTimeout(t);
          },
        };
      }
    } catch {
      redis.disconnect();
    }
    await sleep(100);
  }
  child.kill('SIGKILL');
  throw new Error('redis-server did not start (is it installed?)');
}
