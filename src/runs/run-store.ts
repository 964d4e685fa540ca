import type { RedisClient } from '../redis/connect-redis.js';
import { EnqueueLostError, InputError } from '../errors.js';
import { newOpId, REDIS_RETRY_MS, retryRedis } from '../redis/redis-retry.js';
import { bullJobKey, queueKeys, runKeys } from '../redis/keys.js';
import { batchJobId } from './batch-job-data.js';
import { LockScripts } from '../redis/lock-scripts.js';
import { waitForReplicas, type ReplicaAck } from '../redis/wait-for-replicas.js';
import { ENQUEUE_FIXED_KEYS, RunScripts, type CommitResult, type CommitScriptInput } from '../redis/run-scripts.js';
import type { PageState } from '../policy/next-page.js';
import type { FailedLine, Summary } from '../sinks/sink.js';

/** A run name is a label, never a path: letters, digits, `.`, `_`, `-`, at most 100, no leading dot. */
export const RUN_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** Throws an InputError naming the bad run name. */
export function validateRunName(run: string): string {
  if (!RUN_NAME_RE.test(run)) {
    throw new InputError(`invalid run name ${JSON.stringify(run)}: use 1-100 letters, digits, ".", "_" or "-", starting with a letter or digit`);
  }
  return run;
}

/** Per-ID retry state kept in Redis between steps of a batch (never holds secrets). */
export interface RetryState {
  /** Attempts spent (rate-limit waits do not spend one). */
  attempts: number;
  /** Rate-limited retries so far, capped so nothing loops forever. */
  limited: number;
  /** Not before this epoch ms. */
  dueAt: number;
  lastStatus: number | null;
  lastError: string | null;
  /** Credential ids that refused this ID for good (403, or a second 401). */
  refusedBy: string[];
  /** Credential ids that answered one 401 for this ID (it may have been a blip). */
  blipped: string[];
  /**
   * Paginated IDs (issue #13): the page to fetch next. It moves past a page only in the same
   * commit that makes the page durable (a part), so a resumed attempt starts at the page reached.
   */
  page?: PageState;
  /** output.mode "id": parts (never output themselves) holding this ID's pages committed so far, merged when it ends. */
  pageParts?: string[];
  /** output.mode "id": the bytes of this ID's page bodies so far, held to output.maxMergedBytes. */
  pageBytes?: number;
}

export function newRetryState(): RetryState {
  return { attempts: 0, limited: 0, dueAt: 0, lastStatus: null, lastError: null, refusedBy: [], blipped: [] };
}

export interface BatchContents {
  ids: string[];
  step: number;
  states: Map<string, RetryState>;
}

export interface RunStatus {
  run: string;
  queue: string;
  total: number;
  succeeded: number;
  failed: number;
  pending: number;
  /** Every ID has an outcome and the output files are written. */
  complete: boolean;
  /** Every ID has an outcome (output may still be being written). */
  done: boolean;
  /** All IDs are enqueued: `total` is final. */
  sealed: boolean;
  createdAt: string | null;
  finishedAt: string | null;
  errors: Record<string, number>;
  /** Why the run cannot complete (a batch that cannot be written), if so: `pull` exits 2 naming it. */
  aborted: string | null;
}

export type { CommitResult } from '../redis/run-scripts.js';

/** One batch step to commit: the script's input, named by run, with the IDs still to do as retry states. */
export interface CommitInput extends Omit<CommitScriptInput, 'op' | 'leftovers'> {
  run: string;
  leftovers: Map<string, RetryState>;
}

/** Bits of the dedupe bucket number: ~64 IDs per bucket keeps each bucket a compact listpack hash. */
export function seenBitsFor(expectedIds: number): number {
  return Math.max(0, Math.min(20, Math.ceil(Math.log2(Math.max(1, expectedIds) / 64))));
}

/** 32-bit FNV-1a over the UTF-16 code units of a string, as a signed 32-bit integer (a small integer: no heap number). */
function fnv1aBits(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h;
}

/** 32-bit FNV-1a over the UTF-16 code units of a string, unsigned. */
export function fnv1a32(s: string): number {
  return fnv1aBits(s) >>> 0;
}

/** Dedupe bucket keys a producer keeps made (~70 bytes each): all of a run's up to seenBits 16 (~4M IDs). */
const BUCKET_KEY_CACHE = 2 ** 16;

/**
 * The dedupe bucket of an ID: the first `seenBits` bits (0-20) of fnv1a32(id), i.e.
 * floor(fnv1a32(id) / 2^(32 - seenBits)) (any fixed function works: the script dedupes by the
 * SHA-1 field within it). A small integer: no heap number per ID, unlike fnv1a32's unsigned 32 bits.
 */
export function bucketOf(id: string, seenBits: number): number {
  return seenBits === 0 ? 0 : fnv1aBits(id) >>> (32 - seenBits);
}

/** `first + rank[i]` for i in [from, to), space-separated: the KEYS index of each ID's bucket, as one argument. */
function keyIndexes(rank: Int32Array, from: number, to: number, first: number): string {
  const parts: number[] = new Array(to - from);
  for (let i = from; i < to; i++) parts[i - from] = first + rank[i]!;
  return parts.join(' ');
}

/** A chunk of IDs sent to a run and not answered yet: its first position, and a promise settled with its answer. */
interface SentChunk {
  p0: number;
  settled: Promise<void>;
}

/** Everything pullq keeps in Redis about runs, besides BullMQ's own job keys. */
export class RunStore {
  readonly redis: RedisClient;
  readonly queue: string;
  private readonly scripts: RunScripts;
  private readonly locks: LockScripts;
  constructor(redis: RedisClient, queue: string) {
    this.redis = redis;
    this.queue = queue;
    this.scripts = new RunScripts(redis, queue);
    this.locks = new LockScripts(redis);
  }

  private givenUp = false;

  /**
   * Calls through this store stop retrying through a lost connection (they fail at their next error): for a
   * worker forced to close, whose unfinished jobs go back to the queue when their locks expire anyway.
   */
  stopRetrying(): void {
    this.givenUp = true;
  }

  private retry<T>(op: () => Promise<T>): Promise<T> {
    return retryRedis(op, REDIS_RETRY_MS, () => this.givenUp);
  }

  keys(run: string) {
    return runKeys(this.queue, run);
  }

  /** Creates a run, or finds the unsealed one to resume. Throws when the run is already sealed. */
  async open(run: string, info: { source: string; expectedIds: number; batchSize: number }): Promise<{ resumed: boolean }> {
    const input = { op: newOpId(), now: Date.now(), source: info.source, seenBits: seenBitsFor(info.expectedIds), batchSize: info.batchSize };
    const res = await this.retry(() => this.scripts.open(run, input));
    if (res.kind === 'created') return { resumed: false };
    if (res.kind === 'sealed') throw new InputError(`run ${run} already exists and is fully enqueued; choose another --run`);
    return { resumed: true };
  }

  /** The queue's runs, scored by creation time. */
  private get runsKey(): string {
    return queueKeys(this.queue).runs;
  }

  /**
   * Adds a chunk of IDs; `invalid` ones (with their failed.jsonl line) are
   * recorded as failed at once. Returns how many were new and which batches it closed.
   */
  async addIds(run: string, ids: string[], batchSize: number, seenBits: number, invalid: { id: string; line: FailedLine }[] = []): Promise<{ added: number; closed: number[] }> {
    const k = this.keys(run);
    const next = await this.nextPosition(run);
    // Every key is declared (enqueueIds-n.lua): the dedupe bucket of every ID, its batch by position.
    // Built lean (once per 1,000 IDs): typed arrays, no Map, no heap number per ID, cached bucket keys.
    const v = ids.length;
    const all = v + invalid.length;
    const bucket = new Int32Array(all);
    for (let i = 0; i < v; i++) bucket[i] = bucketOf(ids[i]!, seenBits);
    for (let i = v; i < all; i++) bucket[i] = bucketOf(invalid[i - v]!.id, seenBits);
    // The distinct buckets, ascending (their keys follow the batch keys in KEYS), and each ID's rank among them.
    const distinct = bucket.slice().sort();
    let nd = 0;
    for (let i = 0; i < all; i++) if (i === 0 || distinct[i] !== distinct[i - 1]) distinct[nd++] = distinct[i]!;
    const rank = new Int32Array(all);
    for (let i = 0; i < all; i++) {
      const x = bucket[i]!;
      let lo = 0;
      let hi = nd - 1;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (distinct[mid]! < x) lo = mid + 1;
        else hi = mid;
      }
      rank[i] = lo;
    }
    const bucketKey = this.bucketKeysOf(run, seenBits, k);
    const bucketKeys: string[] = new Array(nd);
    for (let r = 0; r < nd; r++) bucketKeys[r] = bucketKey(distinct[r]!);
    const op = newOpId();
    const invalidLines = invalid.map((x) => ({ id: x.id, line: JSON.stringify(x.line) }));
    const sent = this.sentChunks(run);
    let p0: number | undefined;
    let waited = false;
    for (;;) {
      // Numbered at send time, in send order: chunks sent together run in that order.
      if (p0 === undefined) {
        p0 = next.value;
        next.value += v;
      }
      const b0 = Math.floor(p0 / batchSize);
      const nb = Math.max(1, Math.floor((p0 + Math.max(v, 1) - 1) / batchSize) - b0 + 1);
      const batchKeys: string[] = [];
      for (let b = b0; b < b0 + nb; b++) batchKeys.push(k.batch(b));
      // Bucket r's 1-based index into the script's KEYS: after the fixed keys and the batch keys.
      const first = ENQUEUE_FIXED_KEYS + nb + 1;
      const input = {
        op, batchSize, p0, batchKeys, bucketKeys, ids, invalid: invalidLines,
        validBuckets: keyIndexes(rank, 0, v, first),
        invalidBuckets: keyIndexes(rank, v, all, first),
      };
      let answered!: () => void;
      const chunk: SentChunk = { p0, settled: new Promise<void>((resolve) => (answered = resolve)) };
      sent.add(chunk);
      let res;
      try {
        res = await this.retry(() => this.scripts.enqueue(run, input));
      } finally {
        sent.delete(chunk);
        answered();
      }
      if (res.kind === 'sealed') throw new InputError(`run ${run} is already sealed`);
      if (res.kind === 'gap') {
        // The positions before p0 are not in the run. Chunks of this producer numbered before it may not
        // have run yet (one retried after a dropped connection): once they have, send it again. If the gap
        // is still there, Redis lost a chunk it had acknowledged.
        if (!waited) {
          waited = true;
          for (let earlier; (earlier = [...sent].filter((c) => c.p0 < p0!)).length > 0; ) await Promise.all(earlier.map((c) => c.settled));
          continue;
        }
        throw lostIds(run);
      }
      // Ran after a later chunk (a retry, or another producer): its positions may lie in closed batches;
      // number it again, after everything sent so far and everything the run has seen.
      if (res.kind === 'renumber') {
        const pos = Number((await this.retry(() => this.redis.hget(k.meta, 'pos'))) ?? 0);
        next.value = Math.max(next.value, pos);
        p0 = undefined;
        continue;
      }
      return { added: res.added, closed: res.closed };
    }
  }

  /**
   * The dedupe bucket keys of the run IDs were last added to, each made once (buckets below
   * BUCKET_KEY_CACHE): a call names ~1,000 of them, and making them afresh for every call
   * was the largest part of the producer's garbage (1M IDs: peak RSS 145-180 MB instead of ~135).
   */
  private bucketKeyCache: { run: string; keys: (string | undefined)[] } | undefined;
  private bucketKeysOf(run: string, seenBits: number, k: ReturnType<RunStore['keys']>): (bucket: number) => string {
    // Sized up front: filled at random indices, a growing [] would turn into a slow dictionary.
    if (this.bucketKeyCache?.run !== run) this.bucketKeyCache = { run, keys: new Array<string | undefined>(Math.min(2 ** seenBits, BUCKET_KEY_CACHE)) };
    const cached = this.bucketKeyCache.keys;
    return (b) => (b < cached.length ? (cached[b] ??= k.seenBucket(b)) : k.seenBucket(b));
  }

  /** The next position to number IDs from, per run (the run's `pos` when this process first adds to it). */
  private readonly positions = new Map<string, Promise<{ value: number }>>();
  private nextPosition(run: string): Promise<{ value: number }> {
    let p = this.positions.get(run);
    if (!p) {
      p = this.retry(() => this.redis.hget(this.keys(run).meta, 'pos')).then((v) => ({ value: Number(v ?? 0) }));
      this.positions.set(run, p);
    }
    return p;
  }

  /** Chunks of a run sent and not yet answered, by first position (a chunk refused for a gap waits for earlier ones). */
  private readonly unanswered = new Map<string, Set<SentChunk>>();
  private sentChunks(run: string): Set<SentChunk> {
    let set = this.unanswered.get(run);
    if (!set) this.unanswered.set(run, (set = new Set()));
    return set;
  }

  /** Forgets where this process numbered a run's IDs up to: the next addIds numbers from the run's `pos` in Redis. */
  forgetPositions(run: string): void {
    this.positions.delete(run);
  }

  /**
   * Closes the run's IDs: `total` becomes final. Throws EnqueueLostError when the run holds fewer
   * positions than this process numbered (Redis lost an acknowledged chunk): nothing is sealed then.
   */
  async seal(run: string): Promise<{ done: boolean; closed: number[] }> {
    const numberedTo = this.positions.has(run) ? (await this.positions.get(run)!).value : undefined;
    const input = { op: newOpId(), now: Date.now(), numberedTo };
    const res = await this.retry(() => this.scripts.seal(run, input));
    if (res.lost) throw lostIds(run);
    return res;
  }

  /**
   * Closed batches (0 .. the run's open batch - 1) that hold IDs but have no BullMQ job: what a commit that Redis
   * acknowledged and then lost leaves (the job completed, the batch's IDs came back). One script call per 1,000
   * batches: a run of 10,000 batches costs ten calls.
   */
  async batchesWithoutJob(run: string): Promise<number[]> {
    const open = Number((await this.retry(() => this.redis.hget(this.keys(run).meta, 'open'))) ?? 0);
    const out: number[] = [];
    const jobKeyOf = (b: number) => bullJobKey(this.queue, batchJobId(run, b));
    for (let from = 0; from < open; from += 1000) {
      const batches = Array.from({ length: Math.min(open, from + 1000) - from }, (_, i) => from + i);
      out.push(...(await this.retry(() => this.scripts.strandedBatches(run, batches, jobKeyOf))));
    }
    return out;
  }

  async runSetting(run: string, field: 'seenBits' | 'batchSize'): Promise<number> {
    return Number((await this.retry(() => this.redis.hget(this.keys(run).meta, field))) ?? 0);
  }

  /** Batches closed whose BullMQ job may not have been added yet. */
  async pendingJobBatches(run: string): Promise<number[]> {
    return (await this.retry(() => this.redis.smembers(this.keys(run).pendingJobs))).map(Number);
  }

  async markJobsAdded(run: string, batches: number[]): Promise<void> {
    if (batches.length > 0) await this.retry(() => this.redis.srem(this.keys(run).pendingJobs, ...batches.map(String)));
  }

  /**
   * Hands a batch back as "closed, job not added": the next repair (pull
   * resume, worker start, status) adds its job again. For a batch whose job
   * ended without finishing it (its run was aborted).
   */
  async markJobPending(run: string, batch: number): Promise<void> {
    await this.retry(() => this.redis.sadd(this.keys(run).pendingJobs, String(batch)));
  }

  /** Marks the run as unable to complete, naming why; `pull` stops with exit 2 and `status` shows it. */
  async abort(run: string, reason: string): Promise<void> {
    await this.retry(() => this.redis.hsetnx(this.keys(run).meta, 'aborted', reason));
  }

  /** Why the run was aborted, or null. */
  async abortReason(run: string): Promise<string | null> {
    return this.retry(() => this.redis.hget(this.keys(run).meta, 'aborted'));
  }

  /** Lifts an abort (the user resumes the run after fixing its cause). */
  async clearAbort(run: string): Promise<void> {
    await this.retry(() => this.redis.hdel(this.keys(run).meta, 'aborted'));
  }

  async readBatch(run: string, batch: number): Promise<BatchContents> {
    const k = this.keys(run);
    const [[, ids], [, state]] = (await this.retry(() => this.redis.multi().lrange(k.batch(batch), 0, -1).hgetall(k.batchState(batch)).exec())) as [
      [Error | null, string[]],
      [Error | null, Record<string, string>],
    ];
    const states = new Map<string, RetryState>();
    for (const [field, value] of Object.entries(state)) {
      if (field.startsWith('a:')) states.set(field.slice(2), { ...newRetryState(), ...(JSON.parse(value) as Partial<RetryState>) });
    }
    return { ids, step: Number(state['step'] ?? 0), states };
  }

  /**
   * Commits one step of a batch (commitBatch-6.lua), retrying through lost
   * connections under one operation id: a call that ran but whose reply was
   * lost answers its first result, so a step never commits twice. Throws
   * when Redis stays unreachable: the outcome is then unknown.
   */
  async commit(c: CommitInput): Promise<CommitResult> {
    const leftovers: [string, string][] = [...c.leftovers].map(([id, state]) => [id, JSON.stringify(state)]);
    const input = { ...c, op: newOpId(), leftovers };
    return this.retry(() => this.scripts.commit(c.run, input));
  }

  async status(run: string): Promise<RunStatus | null> {
    const m = await this.retry(() => this.redis.hgetall(this.keys(run).meta));
    if (!m['createdAt']) return null;
    const num = (f: string) => Number(m[f] ?? 0);
    const total = num('total');
    const succeeded = num('succeeded');
    const failed = num('failed');
    const sealed = m['sealed'] === '1';
    const done = sealed && succeeded + failed >= total;
    const errors: Record<string, number> = {};
    for (const [f, v] of Object.entries(m)) if (f.startsWith('err:')) errors[f.slice(4)] = Number(v);
    return {
      run,
      queue: this.queue,
      total,
      succeeded,
      failed,
      pending: Math.max(0, total - succeeded - failed),
      complete: done && m['finalized'] === '1',
      done,
      sealed,
      createdAt: new Date(num('createdAt')).toISOString(),
      finishedAt: m['finishedAt'] ? new Date(Number(m['finishedAt'])).toISOString() : null,
      errors,
      aborted: m['aborted'] ?? null,
    };
  }

  /** Runs of this queue, newest first. */
  async listRuns(limit = 50): Promise<string[]> {
    return this.retry(() => this.redis.zrevrange(this.runsKey, 0, limit - 1));
  }

  async parts(run: string): Promise<string[]> {
    return this.retry(() => this.redis.lrange(this.keys(run).parts, 0, -1));
  }

  /** failed.jsonl lines of the IDs that were never requested (invalid_id), 10,000 at a time. */
  async *invalidLines(run: string): AsyncGenerator<string[]> {
    const key = this.keys(run).invalid;
    for (let start = 0; ; start += 10_000) {
      const lines = await this.retry(() => this.redis.lrange(key, start, start + 9_999));
      if (lines.length === 0) return;
      yield lines;
    }
  }

  /**
   * Waits (at most `timeoutMs`) until a replica holds every write Redis had made so far: what a step
   * about to do something irreversible (publish output, delete parts) has read. Durable at once when
   * Redis has no replica and none is expected (no redis.sentinels, none seen attached before). Routed by the queue's keys (one node on Redis Cluster).
   */
  async replicasHold(timeoutMs?: number): Promise<ReplicaAck> {
    return this.retry(() => waitForReplicas(this.redis, { markerKey: queueKeys(this.queue).replicated, timeoutMs }));
  }

  /** Takes the finalize lock for `ms`; false when another process holds it. */
  async lockFinalize(run: string, owner: string, ms: number): Promise<boolean> {
    const key = this.keys(run).finalizeLock;
    // A SET NX whose reply was lost is sent again and answers null: the lock holding our value is ours.
    return this.retry(async () => (await this.redis.set(key, owner, 'PX', ms, 'NX')) === 'OK' || (await this.redis.get(key)) === owner);
  }

  /** Extends the finalize lock while `owner` holds it; false when it was lost. */
  async extendFinalize(run: string, owner: string, ms: number): Promise<boolean> {
    return this.retry(() => this.locks.extend(this.keys(run).finalizeLock, owner, ms));
  }

  /** Whether `owner` still holds the finalize lock. */
  async holdsFinalize(run: string, owner: string): Promise<boolean> {
    return (await this.retry(() => this.redis.get(this.keys(run).finalizeLock))) === owner;
  }

  async unlockFinalize(run: string, owner: string): Promise<void> {
    await this.retry(() => this.locks.release(this.keys(run).finalizeLock, owner));
  }

  async isFinalized(run: string): Promise<boolean> {
    return (await this.retry(() => this.redis.hget(this.keys(run).meta, 'finalized'))) === '1';
  }

  /**
   * Sets the run's counts to those of its published summary (sealed, total, succeeded, failed,
   * per-code errors), while `owner` holds the finalize lock (false when it was lost): for a run
   * whose output the sink holds while Redis lost its later state (see adoptPublishedRun).
   */
  async adoptCounts(run: string, summary: Summary, owner: string): Promise<boolean> {
    const k = this.keys(run);
    if (!(await this.holdsFinalize(run, owner))) return false;
    const fields = await retryRedis(() => this.redis.hkeys(k.meta));
    const stale = fields.filter((f) => f.startsWith('err:'));
    const counts: (string | number)[] = ['sealed', '1', 'total', summary.total, 'succeeded', summary.succeeded, 'failed', summary.failed];
    for (const [code, n] of Object.entries(summary.errors)) counts.push(`err:${code}`, n);
    await retryRedis(async () => {
      const m = this.redis.multi();
      if (stale.length) m.hdel(k.meta, ...stale);
      await m.hset(k.meta, ...counts).exec();
    });
    return true;
  }

  /**
   * Marks the output written, while `owner` holds the finalize lock (false when it was lost),
   * and drops what only mattered while the run was live (dedupe set, part list, operation records).
   */
  async markFinalized(run: string, finishedAt: number, owner: string): Promise<boolean> {
    const k = this.keys(run);
    if (!(await this.retry(() => this.scripts.markFinalized(run, owner, finishedAt)))) return false;
    const bits = await this.runSetting(run, 'seenBits');
    const buckets = 2 ** bits;
    for (let start = 0; start < buckets; start += 1000) {
      const keys: string[] = [];
      for (let b = start; b < Math.min(buckets, start + 1000); b++) keys.push(k.seenBucket(b));
      await this.redis.unlink(...keys);
    }
    await this.redis.unlink(k.parts, k.pendingJobs, k.invalid, k.ops);
    return true;
  }
}

/** Redis acknowledged a chunk of the run's IDs (or its seal), then lost it. */
function lostIds(run: string): EnqueueLostError {
  return new EnqueueLostError(`Redis lost IDs of run ${run} that it had already acknowledged (a restart without fsync, or a failover to a replica that lagged); enqueue or pull the same IDs with --run ${run} again: what is in is skipped, what was lost is added`);
}
