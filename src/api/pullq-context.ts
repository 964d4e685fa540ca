import { Queue } from 'bullmq';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { connectRedis, redisTargetOf, warnAboutRedisSettings, type RedisClient } from '../redis/connect-redis.js';
import { bullPrefix } from '../redis/keys.js';
import type { BatchJobData } from '../runs/batch-job-data.js';
import { RunStore } from '../runs/run-store.js';
import { createSink } from '../sinks/create-sink.js';
import type { Sink } from '../sinks/sink.js';
import { settlesWithin } from '../redis/settles-within.js';

/** How long PullqContext.close() waits for the sink and the queue handles to close before it drops the connections. */
export const CONNECTIONS_CLOSE_MS = 1_000;

/** One Redis connection with what is built on it: the run store and the BullMQ queue. */
export interface Connected {
  redis: RedisClient;
  store: RunStore;
  queue: Queue<BatchJobData>;
}

/**
 * What every call of a Pullq shares. Connections open on first use:
 * `patient` rides out Redis outages (workers, pull; BullMQ needs it),
 * `brief` fails within seconds (enqueue, status, check: a person is waiting).
 * A call that can use either takes the one already open.
 */
export class PullqContext {
  private readonly opened = new Map<'patient' | 'brief', Promise<Connected>>();
  private ownSink: Sink | undefined;

  constructor(
    readonly config: Config,
    readonly logger: Logger,
    private readonly givenSink: Sink | undefined,
    /** Which connection calls that could use either should open (the CLI's short commands ask for 'brief'). */
    private readonly prefer: 'patient' | 'brief',
  ) {}

  /** The connection of `kind`, opened on first use. */
  connection(kind: 'patient' | 'brief' | 'any' = 'any'): Promise<Connected> {
    const want = kind === 'any' ? (this.opened.has('patient') ? 'patient' : this.opened.has('brief') ? 'brief' : this.prefer) : kind;
    let c = this.opened.get(want);
    if (!c) {
      c = this.open(want === 'patient');
      this.opened.set(want, c);
      // A failed open is not kept: the next call tries again.
      c.catch(() => this.opened.delete(want));
    }
    return c;
  }

  private async open(longLived: boolean): Promise<Connected> {
    const redis = await connectRedis(this.config.redis.url, { longLived, logger: this.logger, ...redisTargetOf(this.config.redis) });
    if (longLived) await warnAboutRedisSettings(redis, this.logger);
    const queue = new Queue<BatchJobData>(this.config.queue, { connection: redis, prefix: bullPrefix(this.config.queue) });
    // Dropped connections are ridden out (ioredis reconnects and resends); a user need not see each one.
    queue.on('error', (err) => this.logger.info({ err: { message: err.message } }, 'queue connection error'));
    return { redis, queue, store: new RunStore(redis, this.config.queue) };
  }

  /** The sink outcomes go to: the one given to createPullq, else the config's (made once). */
  sink(): Sink {
    return this.givenSink ?? (this.ownSink ??= createSink(this.config));
  }

  /** The sink a worker writes through: the given one (shared), else undefined so the worker makes its own. */
  workerSink(): Sink | undefined {
    return this.givenSink;
  }

  /**
   * Closes the sink it made and the connections, within CONNECTIONS_CLOSE_MS even when Redis does not answer
   * (hung): then the connections are dropped without their goodbyes.
   */
  async close(): Promise<void> {
    const all = [...this.opened.values()];
    this.opened.clear();
    const sink = this.ownSink;
    this.ownSink = undefined;
    const connected: Connected[] = [];
    for (const c of all) void c.then((value) => connected.push(value), () => undefined);
    const closing = (async () => {
      await sink?.close?.();
      for (const c of await Promise.allSettled(all)) if (c.status === 'fulfilled') await c.value.queue.close();
    })();
    if (!(await settlesWithin(closing.catch((err: unknown) => this.logger.warn({ err: { message: (err as Error)?.message } }, 'closing the sink or a queue handle failed')), CONNECTIONS_CLOSE_MS))) {
      this.logger.warn({ waitedMs: CONNECTIONS_CLOSE_MS }, 'Redis or the sink did not answer while closing; dropping the connections');
    }
    for (const c of connected) c.redis.disconnect();
  }
}
