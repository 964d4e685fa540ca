import type { RedisClient } from '../redis/connect-redis.js';
import { InputError } from '../errors.js';
import { newOpId, retryRedis } from '../redis/redis-retry.js';
import { queueKeys, runKeys } from '../redis/keys.js';
import { LockScripts } from '../redis/lock-scripts.js';
import { ENQUEUE_FIXED_KEYS, RunScripts, type CommitResult, type CommitScriptInput } from '../redis/run-scripts.js';
import type { PageState } from '../policy/next-page.js';
import type { FailedLine } from '../sinks/sink.js';

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

  keys(run: string) {
    return runKeys(this.queue, run);
  }

  /** Creates a run, or finds the unsealed one to resume. Throws when the run is already sealed. */
  async open(run: string, info: { source: string; expectedIds: number; batchSize: number }): Promise<{ resumed: boolean }> {
    const input = { op: newOpId(), now: Date.now(), source: info.source, seenBits: seenBitsFor(info.expectedIds), batchSize: info.batchSize };
    const res = await retryRedis(() => this.scripts.open(run, input));
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
    for (;;) {
      // Numbered at send time, in send order: chunks sent together run in that order.
      const p0 = next.value;
      next.value += v;
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
      const res = await retryRedis(() => this.scripts.enqueue(run, input));
      if (res.kind === 'sealed') throw new InputError(`run ${run} is already sealed`);
      // Ran after a later chunk (a retry, or another producer): its positions may lie in closed batches;
      // number it again, after everything sent so far and everything the run has seen.
      if (res.kind === 'renumber') {
        const pos = Number((await retryRedis(() => this.redis.hget(k.meta, 'pos'))) ?? 0);
        next.value = Math.max(next.value, pos);
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
      p = retryRedis(() => this.redis.hget(this.keys(run).meta, 'pos')).then((v) => ({ value: Number(v ?? 0) }));
      this.positions.set(run, p);
    }
    return p;
  }

  /** Closes the run's IDs: `total` becomes final. */
  async seal(run: string): Promise<{ done: boolean; closed: number[] }> {
    const input = { op: newOpId(), now: Date.now() };
    return retryRedis(() => this.scripts.seal(run, input));
  }

  async runSetting(run: string, field: 'seenBits' | 'batchSize'): Promise<number> {
    return Number((await retryRedis(() => this.redis.hget(this.keys(run).meta, field))) ?? 0);
  }

  /** Batches closed whose BullMQ job may not have been added yet. */
  async pendingJobBatches(run: string): Promise<number[]> {
    return (await retryRedis(() => this.redis.smembers(this.keys(run).pendingJobs))).map(Number);
  }

  async markJobsAdded(run: string, batches: number[]): Promise<void> {
    if (batches.length > 0) await retryRedis(() => this.redis.srem(this.keys(run).pendingJobs, ...batches.map(String)));
  }

  /**
   * Hands a batch back as "closed, job not added": the next repair (pull
   * resume, worker start, status) adds its job again. For a batch whose job
   * ended without finishing it (its run was aborted).
   */
  async markJobPending(run: string, batch: number): Promise<void> {
    await retryRedis(() => this.redis.sadd(this.keys(run).pendingJobs, String(batch)));
  }

  /** Marks the run as unable to complete, naming why; `pull` stops with exit 2 and `status` shows it. */
  async abort(run: string, reason: string): Promise<void> {
    await retryRedis(() => this.redis.hsetnx(this.keys(run).meta, 'aborted', reason));
  }

  /** Why the run was aborted, or null. */
  async abortReason(run: string): Promise<string | null> {
    return retryRedis(() => this.redis.hget(this.keys(run).meta, 'aborted'));
  }

  /** Lifts an abort (the user resumes the run after fixing its cause). */
  async clearAbort(run: string): Promise<void> {
    await retryRedis(() => this.redis.hdel(this.keys(run).meta, 'aborted'));
  }

  async readBatch(run: string, batch: number): Promise<BatchContents> {
    const k = this.keys(run);
    const [[, ids], [, state]] = (await retryRedis(() => this.redis.multi().lrange(k.batch(batch), 0, -1).hgetall(k.batchState(batch)).exec())) as [
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
    return retryRedis(() => this.scripts.commit(c.run, input));
  }

  async status(run: string): Promise<RunStatus | null> {
    const m = await retryRedis(() => this.redis.hgetall(this.keys(run).meta));
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
    return retryRedis(() => this.redis.zrevrange(this.runsKey, 0, limit - 1));
  }

  async parts(run: string): Promise<string[]> {
    return retryRedis(() => this.redis.lrange(this.keys(run).parts, 0, -1));
  }

  /** failed.jsonl lines of the IDs that were never requested (invalid_id), 10,000 at a time. */
  async *invalidLines(run: string): AsyncGenerator<string[]> {
    const key = this.keys(run).invalid;
    for (let start = 0; ; start += 10_000) {
      const lines = await retryRedis(() => this.redis.lrange(key, start, start + 9_999));
      if (lines.length === 0) return;
      yield lines;
    }
  }

  /** Takes the finalize lock for `ms`; false when another process holds it. */
  async lockFinalize(run: string, owner: string, ms: number): Promise<boolean> {
    const key = this.keys(run).finalizeLock;
    // A SET NX whose reply was lost is sent again and answers null: the lock holding our value is ours.
    return retryRedis(async () => (await this.redis.set(key, owner, 'PX', ms, 'NX')) === 'OK' || (await this.redis.get(key)) === owner);
  }

  /** Extends the finalize lock while `owner` holds it; false when it was lost. */
  async extendFinalize(run: string, owner: string, ms: number): Promise<boolean> {
    return retryRedis(() => this.locks.extend(this.keys(run).finalizeLock, owner, ms));
  }

  /** Whether `owner` still holds the finalize lock. */
  async holdsFinalize(run: string, owner: string): Promise<boolean> {
    return (await retryRedis(() => this.redis.get(this.keys(run).finalizeLock))) === owner;
  }

  async unlockFinalize(run: string, owner: string): Promise<void> {
    await retryRedis(() => this.locks.release(this.keys(run).finalizeLock, owner));
  }

  async isFinalized(run: string): Promise<boolean> {
    return (await retryRedis(() => this.redis.hget(this.keys(run).meta, 'finalized'))) === '1';
  }

  /**
   * Marks the output written, while `owner` holds the finalize lock (false when it was lost),
   * and drops what only mattered while the run was live (dedupe set, part list, operation records).
   */
  async markFinalized(run: string, finishedAt: number, owner: string): Promise<boolean> {
    const k = this.keys(run);
    if (!(await retryRedis(() => this.scripts.markFinalized(run, owner, finishedAt)))) return false;
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
