import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import type { Redis as RedisClient } from 'ioredis';
import { Redis } from 'ioredis';

/** True when a Redis at `url` answers PING within 2 s. */
export async function redisAnswers(url: string): Promise<boolean> {
  const r = new Redis(url, { lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/**
 * A Redis for the demo and the benchmarks: the one at `preferred` if it
 * answers, else a throw-away `redis-server` on a free port if one is
 * installed, else undefined (the caller explains how to get Redis).
 */
export async function ensureRedis(preferred: string): Promise<{ url: string; stop(): void; started: boolean } | undefined> {
  if (await redisAnswers(preferred)) return { url: preferred, stop: () => undefined, started: false };
  if (spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status !== 0) return undefined;
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'], { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 50; i++) {
    if (await redisAnswers(url)) return { url, stop: () => void child.kill('SIGTERM'), started: true };
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  return undefined;
}

/** Deletes every key matching the patterns (SCAN + UNLINK): a queue's BullMQ and pullq keys. */
export async function deleteKeys(redis: RedisClient, patterns: string[]): Promise<void> {
  for (const pattern of patterns) {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.unlink(...keys);
    } while (cursor !== '0');
  }
}
