import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { deleteKeys } from '../local-redis.js';
import { queuePatterns } from '../../src/redis/keys.js';

/** What every scenario needs: paths, the Redis, the mode, and clean-up helpers. */
export interface BenchContext {
  quick: boolean;
  root: string;
  /** The built CLI (dist/src/cli/main.js). */
  cli: string;
  /** Built bench helpers (dist/scripts/bench). */
  benchDist: string;
  redisUrl: string;
  redis: Redis;
  log(message: string): void;
  /** A queue name no one else uses: bench-<label>-<random>. */
  newQueue(label: string): string;
  /** Deletes every key of a queue: BullMQ's, pullq's and the Bottleneck limiters named after it. */
  cleanQueue(queue: string): Promise<void>;
  /** A fresh directory under bench/tmp (git-ignored). */
  tempDir(label: string): { dir: string; remove(): void };
}

const here = path.dirname(fileURLToPath(import.meta.url));

export function createBenchContext(options: { quick: boolean; redisUrl: string; log(message: string): void }): BenchContext {
  const root = path.resolve(here, '../../..');
  const redis = new Redis(options.redisUrl, { maxRetriesPerRequest: null });
  return {
    quick: options.quick,
    root,
    cli: path.join(root, 'dist/src/cli/main.js'),
    benchDist: here,
    redisUrl: options.redisUrl,
    redis,
    log: options.log,
    newQueue: (label) => `bench-${label}-${randomBytes(4).toString('hex')}`,
    async cleanQueue(queue) {
      await deleteKeys(redis, [...queuePatterns(queue), `bull:${queue}:*`, `b_${queue}-*`]);
    },
    tempDir(label) {
      const dir = path.join(root, 'bench/tmp', `${label}-${randomBytes(4).toString('hex')}`);
      mkdirSync(dir, { recursive: true });
      return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
    },
  };
}
