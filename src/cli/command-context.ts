import { Queue } from 'bullmq';
import type { RedisClient } from '../redis/connect-redis.js';
import { loadConfig, runtimeEnv, type Config } from '../config.js';
import { createLogger, type Logger } from '../logger.js';
import { connectRedis, warnAboutRedisSettings } from '../redis/connect-redis.js';
import { RunStore, validateRunName } from '../runs/run-store.js';
import { defaultRunName } from '../runs/run-name.js';
import { idsSourceLabel } from '../ids/ids-input.js';
import { createPullq, type Pullq } from '../api/create-pullq.js';
import type { BatchJobData } from '../runs/batch-job-data.js';
import { bullPrefix } from '../redis/keys.js';

/** What every command that talks to Redis needs. */
export interface CommandContext {
  config: Config;
  logger: Logger;
  redis: RedisClient;
  store: RunStore;
  queue: Queue<BatchJobData>;
  close(): Promise<void>;
}

export interface GlobalFlags {
  config?: string;
  verbose?: boolean;
}

/** Loads config, opens Redis (one clear error if it cannot) and the queue. */
export async function openContext(flags: GlobalFlags, options: { longLived: boolean; defaultLogLevel: string; logFormat: 'json' | 'human'; /** Where human log lines go (default stderr). */ write?: (line: string) => void }): Promise<CommandContext> {
  const env = runtimeEnv();
  const config = loadConfig(flags.config, env);
  const logger = createLogger(env.logLevel ?? (flags.verbose ? 'debug' : options.defaultLogLevel), options.logFormat, { write: options.write });
  const redis = await connectRedis(config.redis.url, { longLived: options.longLived, logger, cluster: config.redis.cluster });
  if (options.longLived) await warnAboutRedisSettings(redis, logger);
  const queue = new Queue<BatchJobData>(config.queue, { connection: redis, prefix: bullPrefix(config.queue) });
  // Dropped connections are ridden out (ioredis reconnects and resends); a user need not see each one.
  queue.on('error', (err) => logger.info({ err: { message: err.message } }, 'queue connection error'));
  return {
    config,
    logger,
    redis,
    store: new RunStore(redis, config.queue),
    queue,
    async close() {
      await queue.close();
      redis.disconnect();
    },
  };
}

/**
 * The library object a command works through, with the config it loaded and
 * the logger it made. `brief`: a command a person waits on (fails within
 * seconds when Redis is away); `patient`: one that runs long (rides it out).
 */
export function openPullq(flags: GlobalFlags, options: { connection: 'patient' | 'brief'; defaultLogLevel: string; logFormat: 'json' | 'human'; write?: (line: string) => void }): { pullq: Pullq; config: Config; logger: Logger } {
  const env = runtimeEnv();
  const config = loadConfig(flags.config, env);
  const logger = createLogger(env.logLevel ?? (flags.verbose ? 'debug' : options.defaultLogLevel), options.logFormat, { write: options.write });
  return { pullq: createPullq(config, { logger, connection: options.connection }), config, logger };
}

/** `--run`, or the IDs file's base name ("stdin" for -) and a UTC timestamp. */
export function runNameFor(flag: string | undefined, source: string, now = new Date()): string {
  return flag !== undefined ? validateRunName(flag) : defaultRunName(idsSourceLabel(source), now);
}
