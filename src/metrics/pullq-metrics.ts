import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { RequestStats } from './request-stats.js';

/** HTTP status → the `status_class` label: 2xx … 5xx, or `network` when no answer came. */
export function statusClass(status: number | null): string {
  if (status === null) return 'network';
  return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : 'other';
}

/** A credential as metrics name it: its label (configured name or fingerprint), never its secret. */
interface Named {
  label: string;
}

/** One credential's fleet-wide state, read from Redis at scrape time. */
export interface CredentialGauge {
  label: string;
  state: 'ok' | 'resting' | 'quarantined';
  /** Starts left in its tightest window now, when a budget is known. */
  remaining: number | null;
}

export interface ScrapeSources {
  /** Every credential's state (CredentialPool.health()). */
  credentials?: () => Promise<CredentialGauge[]>;
  /** BullMQ's own export of the queue's job counts (Queue.exportPrometheusMetrics()). */
  queue?: () => Promise<string>;
}

const STATES = ['ok', 'resting', 'quarantined'] as const;

/** Runs whose IDs counters a process keeps: a schedule makes a run per tick, and series must stay bounded. */
export const METRICS_MAX_RUNS = 20;

/**
 * A process's Prometheus metrics (prom-client, its own registry): what this
 * process did (requests, IDs, commits, rests) as counters and histograms, and
 * what the fleet looks like (credential state and budget, queue depth) read
 * from Redis when scraped. Labels are credential labels, run names (the last
 * METRICS_MAX_RUNS runs), status classes and error codes: bounded, and never a
 * secret or an ID.
 */
export class PullqMetrics {
  readonly registry = new Registry();
  private readonly requests: RequestStats;
  private readonly ids: Counter<'run' | 'outcome' | 'code'>;
  private readonly rests: Counter<'credential' | 'reason'>;
  private readonly quarantines: Counter<'credential' | 'reason'>;
  private readonly commits: Histogram;
  private readonly credentialState: Gauge<'credential' | 'state'>;
  private readonly budgetRemaining: Gauge<'credential'>;
  private sources: ScrapeSources = {};
  private processGauges: (() => void) | undefined;
  /** The label sets of pullq_ids_total per run, oldest run first (evicted past METRICS_MAX_RUNS). */
  private readonly runLabels = new Map<string, Set<string>>();

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.requests = new RequestStats(this.registry);
    this.ids = new Counter({ name: 'pullq_ids_total', help: 'IDs finished (committed exactly once), by run, outcome and error code (ok for succeeded)', labelNames: ['run', 'outcome', 'code'], registers });
    this.rests = new Counter({ name: 'pullq_credential_rests_total', help: 'Rests this process started on a credential (the API said it is rate limited)', labelNames: ['credential', 'reason'], registers });
    this.quarantines = new Counter({ name: 'pullq_credential_quarantines_total', help: 'Quarantines this process put on a credential', labelNames: ['credential', 'reason'], registers });
    this.commits = new Histogram({ name: 'pullq_commit_duration_seconds', help: 'Time to commit one batch step in Redis', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers });
    this.credentialState = new Gauge({ name: 'pullq_credential_state', help: 'A credential\'s fleet-wide state: 1 for the state it is in', labelNames: ['credential', 'state'], registers });
    this.budgetRemaining = new Gauge({ name: 'pullq_credential_budget_remaining', help: 'Request starts left in the credential\'s tightest window now (budget configured or learned)', labelNames: ['credential'], registers });
    // A few process figures, read at scrape (prom-client's default collectors read /proc and every handle
    // at each scrape: scraped every second they cost a busy worker ~3% of its throughput).
    if (options.defaultMetrics !== false) {
      const cpu = new Counter({ name: 'pullq_process_cpu_seconds_total', help: 'CPU time this process used (user + system), seconds', registers });
      let cpuSeen = 0;
      const rss = new Gauge({ name: 'pullq_process_resident_memory_bytes', help: 'Resident memory of this process', registers });
      const heap = new Gauge({ name: 'pullq_process_heap_used_bytes', help: 'V8 heap in use', registers });
      this.processGauges = () => {
        const u = process.cpuUsage();
        const total = (u.user + u.system) / 1e6;
        cpu.inc(Math.max(0, total - cpuSeen));
        cpuSeen = total;
        rss.set(process.memoryUsage.rss());
        heap.set(process.memoryUsage().heapUsed);
      };
    }
  }

  /** Where fleet-wide gauges are read from at each scrape. */
  scrapeFrom(sources: ScrapeSources): this {
    this.sources = sources;
    return this;
  }

  request(e: { credential: Named; status: number | null; seconds: number }): void {
    this.requests.record(e.credential.label, statusClass(e.status), e.seconds);
  }

  committed(e: { run: string; succeeded: number; errors: ReadonlyMap<string, number>; seconds: number }): void {
    if (e.succeeded > 0) this.countIds(e.run, 'succeeded', 'ok', e.succeeded);
    for (const [code, n] of e.errors) this.countIds(e.run, 'failed', code, n);
    this.commits.observe(e.seconds);
  }

  private countIds(run: string, outcome: string, code: string, n: number): void {
    let sets = this.runLabels.get(run);
    if (!sets) {
      this.runLabels.set(run, (sets = new Set()));
      // The oldest run's series go (Prometheus keeps what it scraped of them).
      for (const [old, oldSets] of this.runLabels) {
        if (this.runLabels.size <= METRICS_MAX_RUNS) break;
        for (const key of oldSets) {
          const [o, c] = key.split('\0') as [string, string];
          this.ids.remove({ run: old, outcome: o, code: c });
        }
        this.runLabels.delete(old);
      }
    }
    sets.add(`${outcome}\0${code}`);
    this.ids.inc({ run, outcome, code }, n);
  }

  rest(e: { credential: Named; reason: string }): void {
    this.rests.inc({ credential: e.credential.label, reason: e.reason });
  }

  quarantine(e: { credential: Named; reason: string }): void {
    this.quarantines.inc({ credential: e.credential.label, reason: e.reason });
  }

  /** The Prometheus text exposition: this process's metrics, then fleet gauges read now, then BullMQ's. */
  async text(): Promise<string> {
    const [creds, queue] = await Promise.all([this.sources.credentials?.().catch(() => undefined), this.sources.queue?.().catch(() => undefined)]);
    if (creds) {
      this.credentialState.reset();
      this.budgetRemaining.reset();
      for (const c of creds) {
        for (const s of STATES) this.credentialState.set({ credential: c.label, state: s }, c.state === s ? 1 : 0);
        if (c.remaining !== null) this.budgetRemaining.set({ credential: c.label }, c.remaining);
      }
    }
    this.processGauges?.();
    const own = await this.registry.metrics();
    return queue ? `${own}\n${queue.trimEnd()}\n` : own;
  }

  /** The Content-Type of text(). */
  get contentType(): string {
    return this.registry.contentType;
  }
}
