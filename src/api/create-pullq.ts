import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CredentialEvents, CredentialHealth, CredentialPool } from '../auth/credential-pool.js';
import { parseConfig, type Config, type ConfigInput } from '../config.js';
import { InputError } from '../errors.js';
import { compileIdUrl } from '../ids/id-url.js';
import { requestTemplateOf } from '../ids/request-template.js';
import { checkIdsInput, idsSourceLabel, type IdsInput } from '../ids/ids-input.js';
import type { BatchEvents } from '../jobs/batch-events.js';
import type { Transform } from '../jobs/shape-result.js';
import { createLogger, type Logger } from '../logger.js';
import { enqueueRun, type EnqueueResult } from '../runs/enqueue-run.js';
import { finalizeRun } from '../runs/finalize-run.js';
import { defaultRunName } from '../runs/run-name.js';
import { validateRunName, type RunStatus } from '../runs/run-store.js';
import type { Sink } from '../sinks/sink.js';
import type { WorkerHandle } from '../workers/start-worker.js';
import type { Probes } from '../metrics/metrics-server.js';
import type { CheckReport } from './check-credentials.js';
import type { CredentialInfo } from './list-credentials.js';
import type { LoginOptions, LoginResult } from './login-client.js';
import type { Plan } from './plan-run.js';
import type { PullOptions, PullResult } from './pull-run.js';
import { PullqContext } from './pullq-context.js';
import { settlesWithin } from '../redis/settles-within.js';
import { readRunReport, type RunReport } from './run-report.js';
import type { DashboardHandle, DashboardOptions } from './serve-dashboard.js';
import { checkSchedule, listSchedules, removeSchedule, upsertSchedule, type ScheduleInfo, type ScheduleOptions } from './schedules.js';

export interface PullqOptions {
  /** Where outcomes go instead of the config's `sink` (see the Sink interface); yours to close. */
  sink?: Sink;
  /** Shapes each successful answer's stored `data` for this process's workers (replaces output.select). */
  transform?: Transform;
  /** A pino logger; default: warnings and errors as JSON lines on stderr. */
  logger?: Logger;
  /**
   * How calls that can use either kind of Redis connection open one:
   * 'patient' (default) rides out outages; 'brief' fails within seconds.
   * Workers and pull always use a patient one.
   */
  connection?: 'patient' | 'brief';
}

export interface EnqueueOptions {
  /** The run's name (an existing one is resumed: IDs already in are skipped); default: the source's name and a UTC timestamp. */
  run?: string;
  /** Called after each chunk: IDs read so far, and how many were new to the run. */
  onProgress?: (read: number, added: number) => void;
}

export interface WorkerOptions {
  /** In-flight requests of this replica (default worker.concurrency). */
  concurrency?: number;
  /** Shapes each successful answer's stored `data` (default: createPullq's transform, else output.select). */
  transform?: Transform;
  /** Called once when this replica cannot go on (e.g. every credential quarantined): it takes no more batches, the ones in hand go back to the queue; close() it when done. */
  onFatal?: (reason: string) => void;
  /** Called when a run this replica touched became complete (its output written). */
  onRunComplete?: (run: string) => void;
  /** Told of every answered request, committed step, rest and quarantine (e.g. to count them). */
  events?: PullqEvents;
  /** Serve /metrics, /healthz and /readyz on this port (0: any free one); default worker.metricsPort, else none. */
  metricsPort?: number;
}

/** A credential as events name it: its id (a fingerprint) and its label (its name, or the fingerprint). Never the secret. */
export interface CredentialRef {
  id: string;
  label: string;
}

/** What a worker tells as it goes; every handler optional, cheap and synchronous. */
export interface PullqEvents {
  /** A request came back (or failed without an answer: status null); `rejected`: rate limited. */
  request?(e: { credential: CredentialRef; status: number | null; errorCode?: string; seconds: number; rejected: boolean }): void;
  /** A step of a batch committed: its outcomes now count, exactly once. */
  committed?(e: { run: string; succeeded: number; failed: number; errors: ReadonlyMap<string, number>; seconds: number }): void;
  /** A credential rests (rate_limited, remaining_zero or retry_after). */
  rest?(e: { credential: CredentialRef; reason: string }): void;
  /** A credential is quarantined (unauthorized or token_refused). */
  quarantine?(e: { credential: CredentialRef; reason: string }): void;
}

/** A worker replica running in this process. */
export interface PullqWorker {
  /** Graceful stop: no new batches, in-flight requests finish (up to worker.shutdownTimeoutMs), the rest goes back to the queue. */
  close(): Promise<void>;
  /** IDs and batches this replica finished. */
  readonly stats: Readonly<{ succeeded: number; failed: number; batches: number }>;
  /** Why the replica stopped taking work, if it had to. */
  fatalReason(): string | undefined;
  /** How many credentials the replica's pool has. */
  readonly credentials: number;
  /** Every credential's state, budget and counters, fleet-wide (read from Redis). */
  health(): Promise<CredentialHealth[]>;
  /** The port /metrics is served on, when it is. */
  readonly metricsPort: number | undefined;
}

export interface WatchOptions {
  /** Time between readings, ms (default 1000). */
  everyMs?: number;
  signal?: AbortSignal;
}

/** pullq as a library: one per config; every method shares its Redis connections until close(). */
export interface Pullq {
  readonly config: Config;
  /** Streams IDs (a file path, "-" for stdin, an array, any iterable or async iterable) into a run, and returns. */
  enqueue(ids: IdsInput, options?: EnqueueOptions): Promise<EnqueueResult>;
  /** Starts a worker replica in this process: it takes batches of every run of the queue until closed. */
  worker(options?: WorkerOptions): Promise<PullqWorker>;
  /** Enqueues and works until the run is complete (or stops), writes the output; `complete: false` says why not. */
  pull(ids: IdsInput, options?: PullOptions): Promise<PullResult>;
  /** A run's report (the newest run's without `run`); throws InputError when there is no such run. */
  status(run?: string): Promise<RunReport>;
  /** A run's counts only, cheap enough to poll; null when there is no such run. */
  runStatus(run: string): Promise<RunStatus | null>;
  /** The run's counts every `everyMs` until it is complete (the last reading) or the signal aborts. */
  watch(run: string, options?: WatchOptions): AsyncIterable<RunStatus>;
  /** One probe request per credential: valid, rejected, forbidden or exhausted. */
  check(options?: { id?: string }): Promise<CheckReport>;
  /** The pool as the fleet sees it now: each credential's name, id, kind, state (ok, resting, quarantined) and source. No requests. */
  credentials(): Promise<CredentialInfo[]>;
  /**
   * OAuth2 authorization code with PKCE for one client (grant authorization_code): calls `onUrl` with the URL to
   * open, takes the redirect on 127.0.0.1:<redirectPort>/callback, stores the refresh token for the fleet.
   * Throws LoginError (refused, state mismatch, exchange refused) or LoginTimeoutError (no answer in time).
   */
  login(options?: LoginOptions): Promise<LoginResult>;
  /** No requests: how long pulling `ids` takes at the budgets, and the useful replicas. */
  plan(ids: IdsInput, options?: { latencyMs?: number }): Promise<Plan>;
  /** Adds or replaces a cron-triggered pull of an IDs file (run by the worker replicas, each tick once). */
  schedule(idsFile: string, options: ScheduleOptions): Promise<ScheduleInfo>;
  /** Every schedule of the queue. */
  schedules(): Promise<ScheduleInfo[]>;
  /** Removes a schedule; InputError when there is none of that name. */
  unschedule(name: string): Promise<void>;
  /** Serves the fleet's web page, Bull Board under /queues, /metrics, /healthz and /readyz until its close(). */
  dashboard(options?: DashboardOptions): Promise<DashboardHandle>;
  /**
   * Stops the workers and dashboards this object started and closes its connections (and the sink it made).
   * Resolves within worker.shutdownTimeoutMs + 10 s even when Redis does not answer (never exits the process):
   * what did not commit goes back to the queue when its lock expires, as after a kill.
   */
  close(): Promise<void>;
}

/** Serves a worker's probes; a port in use is an InputError naming the setting to change. */
async function serveMetrics(probes: Probes, port: number) {
  try {
    const { startProbeServer } = await import('../metrics/metrics-server.js');
    return await startProbeServer(probes, port);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputError(code === 'EADDRINUSE' ? `metrics port ${port} is in use; pick another with --metrics-port or worker.metricsPort` : `cannot serve metrics on port ${port} (${code ?? (err as Error).message})`, { cause: err });
  }
}

/** A credential as a user's handler sees it: never the object that holds the secret. */
const refOf = (c: { id: string; label: string }): CredentialRef => ({ id: c.id, label: c.label });

/** The process's metrics (if served) and the user's handlers, told of every request, commit, rest and quarantine. */
function listenerOf(metrics: (BatchEvents & CredentialEvents) | undefined, user: PullqEvents | undefined): (BatchEvents & CredentialEvents) | undefined {
  if (!user) return metrics;
  return {
    request: (e) => (metrics?.request(e), user.request?.({ ...e, credential: refOf(e.credential) })),
    committed: (e) => (metrics?.committed(e), user.committed?.(e)),
    rest: (e) => (metrics?.rest(e), user.rest?.({ ...e, credential: refOf(e.credential) })),
    quarantine: (e) => (metrics?.quarantine(e), user.quarantine?.({ ...e, credential: refOf(e.credential) })),
  };
}

function isParsed(config: Config | ConfigInput): config is Config {
  return Array.isArray((config as Config).credentials) && 'file' in config;
}

/**
 * How long past worker.shutdownTimeoutMs close() waits for its workers, pulls and dashboards (a worker needs up to
 * CLOSE_AFTER_DEADLINE_MS, 4.5 s, in src/workers/start-worker.ts); then PullqContext.close() takes up to 1 s more.
 */
const CLOSE_GRACE_MS = 8_000;

/**
 * Makes a pullq for a config: a parsed Config (parseConfig, or loaded from a
 * file), or the same object as pullq.config.json holds, validated here
 * (a ConfigError names the bad key). Opens nothing until a method needs it.
 */
export function createPullq(config: Config | ConfigInput, options: PullqOptions = {}): Pullq {
  const parsed = isParsed(config) ? config : parseConfig(config);
  const logger = options.logger ?? createLogger('warn', 'json');
  const ctx = new PullqContext(parsed, logger, options.sink, options.connection ?? 'patient');
  /** Running workers and how to stop each (close() stops those still running). */
  const workers = new Map<WorkerHandle, () => Promise<void>>();
  const dashboards = new Set<() => Promise<void>>();
  const pulls = new Set<{ stop: AbortController; done: Promise<void> }>();
  const repaired = new Set<string>();
  let closed = false;
  const open = () => {
    if (closed) throw new InputError('this pullq is closed; make a new one with createPullq');
  };
  // IDs from code without a run name: a new run each call (two calls in one second must not share one).
  const runNameOf = (ids: IdsInput, run: string | undefined) =>
    run !== undefined ? validateRunName(run) : typeof ids === 'string' ? defaultRunName(idsSourceLabel(ids)) : `${defaultRunName('ids')}-${randomBytes(3).toString('hex')}`;

  const pullq: Pullq = {
    config: parsed,

    async enqueue(ids, o = {}) {
      open();
      const run = runNameOf(ids, o.run);
      await checkIdsInput(ids);
      const c = await ctx.connection();
      const r = await enqueueRun({ store: c.store, queue: c.queue, run, source: ids, batchSize: parsed.enqueue.batchSize, urlFor: compileIdUrl(parsed.request.url), template: requestTemplateOf(parsed), onProgress: o.onProgress });
      // Nothing to fetch (e.g. every ID invalid): the output is written now.
      if (r.done) await finalizeRun(c.store, ctx.sink(), run, logger);
      return r;
    },

    async worker(o = {}) {
      open();
      const c = await ctx.connection('patient');
      let pool: CredentialPool | undefined;
      let draining = false;
      const port = o.metricsPort ?? parsed.worker.metricsPort;
      const probes = port !== undefined ? (await import('./fleet-probes.js')).fleetProbes(c, () => pool, () => draining) : undefined;
      // The port first: one taken fails here, before this replica takes any work.
      const server = probes ? await serveMetrics(probes, port!) : undefined;
      const listener = listenerOf(probes?.metrics, o.events);
      const { startWorker } = await import('../workers/start-worker.js');
      const handle = await startWorker({
        config: parsed,
        connection: c.redis,
        logger,
        concurrency: o.concurrency,
        sink: ctx.workerSink(),
        transform: o.transform ?? options.transform,
        onFatal: o.onFatal,
        onRunComplete: o.onRunComplete,
        events: listener,
      }).catch(async (err: unknown) => {
        await server?.close();
        throw err;
      });
      pool = handle.pool;
      const stop = async () => {
        draining = true;
        await handle.close();
        await server?.close();
      };
      if (closed) {
        // close() ran while this replica started: it must not outlive its pullq.
        await stop();
        throw new InputError('this pullq was closed while the worker started');
      }
      workers.set(handle, stop);
      return {
        stats: handle.stats,
        credentials: handle.pool.size,
        health: () => handle.pool.health(),
        metricsPort: server?.port,
        fatalReason: () => handle.fatalReason(),
        async close() {
          workers.delete(handle);
          await stop();
        },
      };
    },

    async pull(ids, o = {}) {
      open();
      const run = runNameOf(ids, o.run);
      await checkIdsInput(ids);
      const { pullRun } = await import('./pull-run.js');
      open(); // close() may have run while the IDs were checked
      // close() stops a pull under way (as its signal would) before it closes the connections the pull uses.
      const stop = new AbortController();
      const onAbort = () => stop.abort();
      if (o.signal?.aborted) stop.abort();
      o.signal?.addEventListener('abort', onAbort, { once: true });
      const running = pullRun(ctx, ids, run, { ...o, signal: stop.signal, transform: o.transform ?? options.transform });
      const entry = { stop, done: running.then(() => undefined, () => undefined) };
      pulls.add(entry);
      try {
        return await running;
      } finally {
        pulls.delete(entry);
        o.signal?.removeEventListener('abort', onAbort);
      }
    },

    async status(run) {
      open();
      const c = await ctx.connection();
      // Loaded here, not at the top: enqueue need not pay for got.
      const [{ CredentialPool }, { createHttpClient }] = await Promise.all([import('../auth/credential-pool.js'), import('../jobs/http-client.js')]);
      const pool = await CredentialPool.open({ redis: c.redis, config: parsed, logger, http: createHttpClient(parsed), reread: true });
      return readRunReport(c, parsed.queue, pool, run, repaired);
    },

    async runStatus(run) {
      open();
      return (await ctx.connection()).store.status(validateRunName(run));
    },

    watch(run, o = {}) {
      const every = o.everyMs ?? 1000;
      return {
        async *[Symbol.asyncIterator]() {
          while (!o.signal?.aborted) {
            const s = await pullq.runStatus(run);
            if (s) yield s;
            if (s?.complete) return;
            await sleep(every, undefined, { signal: o.signal }).catch(() => undefined);
          }
        },
      };
    },

    async check(o = {}) {
      open();
      const { checkCredentials } = await import('./check-credentials.js');
      return checkCredentials(await ctx.connection(), parsed, logger, o.id);
    },

    async credentials() {
      open();
      const { listCredentials } = await import('./list-credentials.js');
      return listCredentials(await ctx.connection(), parsed, logger);
    },

    async login(o = {}) {
      open();
      const { loginClient } = await import('./login-client.js');
      return loginClient(await ctx.connection(), parsed, logger, o);
    },

    async plan(ids, o = {}) {
      open();
      await checkIdsInput(ids);
      const { planRun } = await import('./plan-run.js');
      return planRun(parsed, logger, ids, o.latencyMs);
    },

    async schedule(idsFile, o) {
      open();
      await checkSchedule(idsFile, o);
      return upsertSchedule(await ctx.connection(), idsFile, o);
    },

    async schedules() {
      open();
      return listSchedules(await ctx.connection());
    },

    async unschedule(name) {
      open();
      await removeSchedule(await ctx.connection(), parsed.queue, name);
    },

    async dashboard(o = {}) {
      open();
      const { serveDashboard } = await import('./serve-dashboard.js');
      const d = await serveDashboard(await ctx.connection(), parsed, logger, o);
      const stop = d.close;
      if (closed) {
        await stop();
        throw new InputError('this pullq was closed while the dashboard started');
      }
      dashboards.add(stop);
      return { ...d, close: async () => (dashboards.delete(stop), stop()) };
    },

    async close() {
      if (closed) return;
      closed = true;
      for (const p of pulls) p.stop.abort();
      const stopping = (async () => {
        await Promise.all([...pulls].map((p) => p.done));
        await Promise.all([...dashboards].map((stop) => stop()));
        await Promise.all([...workers.values()].map((stop) => stop()));
      })();
      // Each part is bounded on its own (a worker's close: worker.shutdownTimeoutMs + 4.5 s); this bounds them all,
      // Redis up or not, so close() returns within worker.shutdownTimeoutMs + 10 s. What is still waiting on Redis
      // then ends when ctx.close() drops the connections; what did not commit goes back to the queue by lock expiry.
      const boundMs = parsed.worker.shutdownTimeoutMs + CLOSE_GRACE_MS;
      if (!(await settlesWithin(stopping.catch((err: unknown) => logger.warn({ err: { message: (err as Error)?.message } }, 'stopping a worker, pull or dashboard failed')), boundMs))) {
        logger.warn({ waitedMs: boundMs }, 'workers, pulls or dashboards did not stop in time (Redis not answering?); closing the connections under them');
      }
      dashboards.clear();
      workers.clear();
      await ctx.close();
    },
  };
  return pullq;
}
