import { Cluster, Redis, type ClusterNode } from 'ioredis';
import { RedisUnavailableError } from '../errors.js';
import type { Logger } from '../logger.js';

/** A Redis URL with any password masked, safe for messages and logs. */
export function safeRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    if (u.username && u.password === '') u.username = '***';
    return u.toString();
  } catch {
    return 'redis://(unparseable url)';
  }
}

/**
 * ioredis's reconnectOnError for every pullq connection (BullMQ's duplicates inherit it): a READONLY
 * reply means the node was demoted to a replica (a failover); 2 = reconnect, which finds the new
 * primary through DNS, a proxy or the cluster map, and send the command again. Other errors: false.
 */
export function reconnectOnReadonly(err: Error): 2 | false {
  return /^READONLY\b/.test(err.message) ? 2 : false;
}

/** A connection to one Redis, or to a Redis Cluster: BullMQ and pullq take either. */
export type RedisClient = Redis | Cluster;

export interface ConnectOptions {
  /** Long-lived roles (worker, pull) retry forever; one-shot commands fail within `connectTimeoutMs`. */
  longLived: boolean;
  /** Seed nodes of a cluster (config redis.cluster); without them a cluster is detected from the url. */
  cluster?: string[];
  connectTimeoutMs?: number;
  logger?: Logger;
}

/**
 * Opens a connection and proves it answers, or throws one clear
 * RedisUnavailableError. A url naming any node of a Redis Cluster (`INFO
 * cluster` says cluster_enabled:1), or a `cluster` seed list, gives an
 * ioredis Cluster client with the url's user, password and TLS. BullMQ needs
 * `maxRetriesPerRequest: null` on workers.
 */
export async function connectRedis(url: string, options: ConnectOptions): Promise<RedisClient> {
  if (options.cluster?.length) return connectCluster(url, options.cluster, options);
  const single = await connectSingle(url, options);
  const info = await single.info('cluster').catch(() => '');
  if (!/cluster_enabled:1/.test(info)) return single;
  single.disconnect();
  return connectCluster(url, [url], options);
}

/** Connects to a Redis Cluster through its seed nodes; every node gets the url's credentials and TLS. */
async function connectCluster(url: string, seeds: string[], options: ConnectOptions): Promise<Cluster> {
  const timeout = options.connectTimeoutMs ?? 5000;
  const auth = new URL(url);
  const nodes: ClusterNode[] = seeds.map((s) => {
    const u = new URL(s);
    return { host: u.hostname, port: Number(u.port || 6379) };
  });
  const cluster = new Cluster(nodes, {
    lazyConnect: true,
    enableReadyCheck: true,
    clusterRetryStrategy: (times) => Math.min(25 * 2 ** Math.min(times, 8), 5000),
    redisOptions: {
      username: auth.username ? decodeURIComponent(auth.username) : undefined,
      password: auth.password ? decodeURIComponent(auth.password) : undefined,
      tls: auth.protocol === 'rediss:' ? {} : undefined,
      maxRetriesPerRequest: null,
      connectTimeout: timeout,
      reconnectOnError: reconnectOnReadonly,
    },
  });
  let lastError: Error | undefined;
  cluster.on('error', (err: Error) => {
    lastError = err;
  });
  try {
    await withTimeout(cluster.connect().then(() => cluster.ping()), timeout);
  } catch (err) {
    cluster.disconnect();
    const why = (lastError as NodeJS.ErrnoException | undefined)?.code ?? (err as Error).message;
    throw new RedisUnavailableError(`cannot reach the Redis Cluster at ${seeds.map(safeRedisUrl).join(', ')} (${why}); check the nodes or set REDIS_URL`, { cause: err });
  }
  cluster.options.lazyConnect = false;
  if (!options.longLived) cluster.options.redisOptions = { ...cluster.options.redisOptions, maxRetriesPerRequest: 3 };
  return cluster;
}

async function connectSingle(url: string, options: ConnectOptions): Promise<Redis> {
  const timeout = options.connectTimeoutMs ?? 5000;
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    connectTimeout: timeout,
    // Reconnect at once after a blip, then with a capped backoff; long-lived processes ride out Redis restarts.
    retryStrategy: (times) => Math.min(25 * 2 ** Math.min(times, 8), 5000),
    reconnectOnError: reconnectOnReadonly,
  });
  // ioredis emits 'error' on every failed reconnect; without a listener Node would crash.
  let lastError: Error | undefined;
  redis.on('error', (err: Error) => {
    lastError = err;
  });
  try {
    // Not just the first attempt: a connection cut during the handshake (a lost reply) is retried
    // by ioredis itself until the timeout.
    const ready = new Promise<void>((resolve) => redis.once('ready', () => resolve()));
    redis.connect().catch(() => undefined);
    await withTimeout(ready.then(() => redis.ping()), timeout);
  } catch (err) {
    redis.disconnect();
    const why = (lastError as NodeJS.ErrnoException | undefined)?.code ?? (err as Error).message;
    throw new RedisUnavailableError(`cannot reach Redis at ${safeRedisUrl(url)} (${why}); start it (e.g. \`docker compose up -d redis\` or \`redis-server\`) or set REDIS_URL`, { cause: err });
  }
  // BullMQ duplicates this connection (blocking reads); a lazy duplicate's first connect() fails outright
  // when the handshake is cut, an eager one retries like this one.
  redis.options.lazyConnect = false;
  if (!options.longLived) {
    // One-shot commands: once connected, a dropped connection should fail calls, not hang them.
    redis.options.maxRetriesPerRequest = 3;
  }
  return redis;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    p.then(
      (v) => { clearTimeout(t); resolve(v); },
      (e) => { clearTimeout(t); reject(e); },
    );
  });
}

/** Warns once if Redis may drop queue data: BullMQ needs `maxmemory-policy noeviction`. */
export async function warnAboutRedisSettings(redis: RedisClient, logger: Logger): Promise<void> {
  try {
    const info = await redis.info('memory');
    const policy = /maxmemory_policy:(\S+)/.exec(info)?.[1];
    if (policy && policy !== 'noeviction') {
      logger.warn({ policy }, `Redis maxmemory-policy is ${policy}; BullMQ needs noeviction or queued work may be evicted`);
    }
    const persistence = await redis.info('persistence');
    const aof = /aof_enabled:(\d)/.exec(persistence)?.[1];
    const rdbSaves = /rdb_last_save_time/.test(persistence);
    const saveConfig = await redis.config('GET', 'save').catch(() => null);
    const saveRules = Array.isArray(saveConfig) ? String(saveConfig[1] ?? '') : 'unknown';
    if (aof === '0' && saveRules === '' && rdbSaves) {
      logger.warn('Redis keeps no persistence (no AOF, no RDB saves): a Redis restart would lose the queue; set `appendonly yes` for long runs');
    }
  } catch {
    // INFO/CONFIG may be disabled on managed Redis: not worth failing over.
  }
}
