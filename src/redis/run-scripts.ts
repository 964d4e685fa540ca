import type { RedisClient } from './connect-redis.js';
import { queueKeys, runKeys } from './keys.js';
import { scriptsFor, type Scripts } from './scripts.js';

// Typed wrappers of the run scripts (src/redis/lua): named arguments in, a
// tagged result out, every key named by keys.ts and declared in KEYS (one hash
// slot per queue). The lock scripts (extendLock, releaseLock) are shared with
// OAuth2's refresh lock.

export type OpenRunResult = { kind: 'created' } | { kind: 'resumable' } | { kind: 'sealed' };

export type EnqueueResult =
  | { kind: 'added'; /** New IDs (valid and invalid). */ added: number; /** Batches this call closed. */ closed: number[] }
  /** The run is sealed: enqueue is over for it. */
  | { kind: 'sealed' }
  /** The chunk ran after a later one: number it again after the run's `pos`. */
  | { kind: 'renumber' }
  /** The chunk starts past the run's `pos`: an earlier chunk has not run yet, or Redis lost it. */
  | { kind: 'gap' };

export interface EnqueueInput {
  op: string;
  batchSize: number;
  /** Position of the chunk's first ID. */
  p0: number;
  /** The batch keys b0 .. b0+nb-1 (in order), then the dedupe buckets the chunk's IDs fall in. */
  batchKeys: string[];
  bucketKeys: string[];
  /** Each valid ID's bucket as a 1-based index into the script's KEYS, space-separated. */
  validBuckets: string;
  /** Sent as one argument, "\n" after each: an ID never holds a line break. */
  ids: string[];
  invalidBuckets: string;
  /** IDs that cannot be requested, each with its failed.jsonl line (JSON). */
  invalid: { id: string; line: string }[];
}

/** Result of committing a batch step (see commitBatch-6.lua). */
export type CommitResult = { ok: true; done: boolean } | { ok: false; reason: 'lock_lost' | 'step_moved' | 'finalized' };

export interface CommitScriptInput {
  op: string;
  /** BullMQ's job lock key and the caller's token: the commit happens only while it holds the lock. */
  lockKey: string;
  token: string;
  batch: number;
  step: number;
  /** Part name, or "" when the step finished no ID. */
  part: string;
  succeeded: number;
  failed: number;
  errors: Map<string, number>;
  /** IDs still to do, each with its retry state (JSON). */
  leftovers: [string, string][];
}

/** The number of fixed keys of enqueueIds-n.lua before the batch keys (meta, pending jobs, ops, invalid). */
export const ENQUEUE_FIXED_KEYS = 4;

export class RunScripts {
  private readonly scripts: Scripts;
  private readonly queue: string;

  constructor(redis: RedisClient, queue: string) {
    this.scripts = scriptsFor(redis);
    this.queue = queue;
  }

  /** openRun-3.lua: creates the run, or finds the one to resume (replays answer the first call's result). */
  async open(run: string, input: { op: string; now: number; source: string; seenBits: number; batchSize: number }): Promise<OpenRunResult> {
    const k = runKeys(this.queue, run);
    const [created, sealed] = (await this.scripts.openRun(k.meta, queueKeys(this.queue).runs, k.ops, input.op, input.now, run, input.source, input.seenBits, input.batchSize)) as number[];
    if (created === 1) return { kind: 'created' };
    return sealed === 1 ? { kind: 'sealed' } : { kind: 'resumable' };
  }

  /** enqueueIds-n.lua: adds a chunk of numbered IDs, dedupes them and closes the batches it completes. */
  async enqueue(run: string, input: EnqueueInput): Promise<EnqueueResult> {
    const k = runKeys(this.queue, run);
    const { batchKeys, bucketKeys, ids } = input;
    // The valid IDs travel as one argument, each followed by "\n" (an ID is a line of the file: it never holds one).
    for (const id of ids) if (id.includes('\n')) throw new Error(`an ID cannot contain a line break: ${JSON.stringify(id)}`);
    const idLines = ids.length > 0 ? ids.join('\n') + '\n' : '';
    // One array, sized once (numkeys, KEYS, ARGV): a call names ~1,000 keys, copies of it are the producer's garbage.
    const numKeys = ENQUEUE_FIXED_KEYS + batchKeys.length + bucketKeys.length;
    const args: (string | number)[] = new Array(1 + numKeys + 8 + 2 * input.invalid.length);
    let a = 0;
    args[a++] = numKeys;
    args[a++] = k.meta;
    args[a++] = k.pendingJobs;
    args[a++] = k.ops;
    args[a++] = k.invalid;
    for (const key of batchKeys) args[a++] = key;
    for (const key of bucketKeys) args[a++] = key;
    args[a++] = input.op;
    args[a++] = input.batchSize;
    args[a++] = input.p0;
    args[a++] = batchKeys.length;
    args[a++] = ids.length;
    args[a++] = input.validBuckets;
    args[a++] = idLines;
    args[a++] = input.invalidBuckets;
    for (const x of input.invalid) {
      args[a++] = x.id;
      args[a++] = x.line;
    }
    const res = (await this.scripts.enqueueIds(...args)) as number | number[];
    if (res === -1) return { kind: 'sealed' };
    const [added, ...closed] = res as number[];
    if (added === -2) return { kind: 'renumber' };
    if (added === -4) return { kind: 'gap' };
    return { kind: 'added', added: added!, closed };
  }

  /**
   * sealRun-3.lua: closes the run's IDs (its total becomes final) and its open batch; `lost` (nothing
   * sealed) when the run's `pos` is short of `numberedTo`, the position the producer numbered up to.
   */
  async seal(run: string, input: { op: string; now: number; numberedTo?: number }): Promise<{ lost: true } | { lost: false; done: boolean; closed: number[] }> {
    const k = runKeys(this.queue, run);
    const [done, ...closed] = (await this.scripts.sealRun(k.meta, k.pendingJobs, k.ops, input.now, input.op, input.numberedTo ?? '')) as number[];
    if (done === -1) return { lost: true };
    return { lost: false, done: done === 1, closed };
  }

  /** commitBatch-6.lua: commits one step of a batch while the caller holds its job lock (exactly once). */
  async commit(run: string, c: CommitScriptInput): Promise<CommitResult> {
    const k = runKeys(this.queue, run);
    const args: (string | number)[] = [c.op, c.token, c.step, c.part, c.succeeded, c.failed, c.errors.size];
    for (const [code, n] of c.errors) args.push(code, n);
    for (const [id, state] of c.leftovers) args.push(id, state);
    const res = (await this.scripts.commitBatch(c.lockKey, k.meta, k.batch(c.batch), k.batchState(c.batch), k.parts, k.ops, ...args)) as number[];
    if (res[0] === 1) return { ok: true, done: res[1] === 1 };
    return { ok: false, reason: res[0] === -1 ? 'lock_lost' : res[0] === -3 ? 'finalized' : 'step_moved' };
  }

  /** findStrandedBatches-n.lua: of `batches`, those whose list holds IDs and whose BullMQ job (`jobKeyOf`) does not exist. */
  async strandedBatches(run: string, batches: number[], jobKeyOf: (batch: number) => string): Promise<number[]> {
    const k = runKeys(this.queue, run);
    const keys = [...batches.map((b) => k.batch(b)), ...batches.map(jobKeyOf)];
    const res = (await this.scripts.findStrandedBatches(keys.length, ...keys, batches.length)) as number[];
    return res.map((i) => batches[i]!);
  }

  /** markFinalized-2.lua: marks the run's output written while `owner` holds the finalize lock; false when it was lost. */
  async markFinalized(run: string, owner: string, finishedAt: number): Promise<boolean> {
    const k = runKeys(this.queue, run);
    return (await this.scripts.markFinalized(k.finalizeLock, k.meta, owner, finishedAt)) === 1;
  }
}
