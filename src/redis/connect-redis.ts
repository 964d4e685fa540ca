import { Cluster, Redis, type ClusterNode, type RedisOptions } from 'ioredis';
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
  /** Redis Sentinel (config redis.sentinels and redis.name): the url is then not used. */
  sentinel?: SentinelTarget;
}

/** Where Sentinel finds the primary: the sentinels' URLs (their user, password and TLS are the Redis nodes'), the master name. */
export interface SentinelTarget {
  sentinels: string[];
  name: string;
  /** The sentinels' own password, when they ask for one. */
  sentinelPassword?: string | undefined;
}

/** The config's `redis` section as connectRedis's options: the cluster seeds or the Sentinel target, if any. */
export function redisTargetOf(redis: { cluster?: string[] | undefined; sentinels?: string[] | undefined; name?: string | undefined; sentinelPassword?: string | undefined }): Pick<ConnectOptions, 'cluster' | 'sentinel'> {
  if (redis.sentinels?.length && redis.name) return { sentinel: { sentinels: redis.sentinels, name: redis.name, sentinelPassword: redis.sentinelPassword } };
  return redis.cluster ? { cluster: redis.cluster } : {};
}

/** Where pullq's Redis is, for messages: the url (password masked), or the sentinels and master name. */
export function describeRedis(redis: { url: string; sentinels?: string[] | undefined; name?: string | undefined }): string {
  if (redis.sentinels?.length) return `master "${redis.name ?? ''}" of the Sentinels ${redis.sentinels.map(safeRedisUrl).join(', ')}`;
  return safeRedisUrl(redis.url);
}

/**
 * Opens a connection and proves it answers, or throws one clear
 * RedisUnavailableError. A url naming any node of a Redis Cluster (`INFO
 * cluster` says cluster_enabled:1), or a `cluster` seed list, gives an
 * ioredis Cluster client with the url's user, password and TLS. BullMQ needs
 * `maxRetriesPerRequest: null` on workers.
 */
export async function connectRedis(url: string, options: ConnectOptions): Promise<RedisClient> {
  if (options.sentinel) return connectSentinel(options.sentinel, url, options);
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

/**
 * Connects to the primary that the sentinels name. ioredis asks the sentinels on every (re)connect and
 * checks the node's role, so after a failover the reconnect finds the promoted replica; the failover
 * detector (a subscription to +switch-master) drops a connection to a demoted primary that still runs.
 */
async function connectSentinel(target: SentinelTarget, url: string, options: ConnectOptions): Promise<Redis> {
  const first = new URL(target.sentinels[0]!);
  // The nodes' user and password: the sentinel URLs' when they carry them, else redis.url's (as for a single Redis).
  const nodes = first.username || first.password ? first : parsedUrl(url) ?? first;
  const tls = first.protocol === 'rediss:';
  return connectSingle(`sentinel ${target.name}`, options, {
    sentinels: target.sentinels.map((s) => {
      const u = new URL(s);
      return { host: u.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(u.port || 26379) };
    }),
    name: target.name,
    username: nodes.username ? decodeURIComponent(nodes.username) : undefined,
    password: nodes.password ? decodeURIComponent(nodes.password) : undefined,
    sentinelPassword: target.sentinelPassword,
    tls: tls || nodes.protocol === 'rediss:' ? {} : undefined,
    sentinelTLS: tls ? {} : undefined,
    enableTLSForSentinelMode: tls,
    failoverDetector: true,
    // Each reconnect asks the sentinels first, so it is cheap: a capped 500 ms finds the promoted
    // replica within half a second of the switch (the 5 s cap of a single Redis would add seconds).
    retryStrategy: (times: number) => Math.min(25 * 2 ** Math.min(times, 8), 500),
    // All sentinels unreachable: try them again, capped like the node reconnects.
    sentinelRetryStrategy: (times: number) => Math.min(25 * 2 ** Math.min(times, 8), 2000),
  }, () => `cannot reach Redis through the Sentinels ${target.sentinels.map(safeRedisUrl).join(', ')} (master "${target.name}")`);
}

function parsedUrl(url: string): URL | undefined {
  try {
    return new URL(url);
  } catch {
    return undefined;
  }
}

async function connectSingle(url: string, options: ConnectOptions, sentinel?: RedisOptions, where?: () => string): Promise<Redis> {
  const timeout = options.connectTimeoutMs ?? 5000;
  const redisOptions: RedisOptions = {
    lazyConnect: true,
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    connectTimeout: timeout,
    // Reconnect at once after a blip, then with a capped backoff; long-lived processes ride out Redis restarts.
    retryStrategy: (times) => Math.min(25 * 2 ** Math.min(times, 8), 5000),
    reconnectOnError: reconnectOnReadonly,
    ...sentinel,
  };
  const redis = sentinel ? new Redis(redisOptions) : new Redis(url, redisOptions);
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
    if (where) throw new RedisUnavailableError(`${where()} (${lastError && !(lastError as NodeJS.ErrnoException).code ? (/All sentinels are unreachable/.test(lastError.message) ? 'no sentinel answered' : lastError.message) : why}); check that the sentinels run and monitor that name (redis.sentinels, redis.name)`, { cause: err });
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
