import { afterAll, describe, expect, it } from 'vitest';
import { runKeys } from '../src/redis/keys.js';
import { LockScripts } from '../src/redis/lock-scripts.js';
import { RunScripts } from '../src/redis/run-scripts.js';
import { cleanQueue, newRedis, uniqueQueue } from './helpers/test-env.js';

// The run scripts' typed wrappers (src/redis/run-scripts.ts, lock-scripts.ts):
// every result a script can give comes out as its named kind, never a bare -1/-2.

const redis = newRedis();
const queues: string[] = [];
afterAll(async () => {
  for (const q of queues) await cleanQueue(redis, q);
  redis.disconnect();
});

function scripts() {
  const queue = uniqueQueue('rs');
  queues.push(queue);
  return { queue, s: new RunScripts(redis, queue) };
}

const open = { now: 1, source: 't', seenBits: 0, batchSize: 2 };
const chunk = (queue: string, run: string, op: string, p0: number, ids: string[]) => {
  const k = runKeys(queue, run);
  const b0 = Math.floor(p0 / 2);
  const nb = Math.floor((p0 + ids.length - 1) / 2) - b0 + 1;
  const batchKeys = Array.from({ length: nb }, (_, i) => k.batch(b0 + i));
  return { op, batchSize: 2, p0, batchKeys, bucketKeys: [k.seenBucket(0)], validBuckets: ids.map(() => 4 + nb + 1).join(' '), ids, invalidBuckets: '', invalid: [] };
};

describe('run script wrappers', () => {
  it('openRun: created, the same call replayed still created, another call resumable, sealed once sealed', async () => {
    const { s } = scripts();
    expect(await s.open('r', { ...open, op: 'o1' })).toEqual({ kind: 'created' });
    expect(await s.open('r', { ...open, op: 'o1' })).toEqual({ kind: 'created' });
    expect(await s.open('r', { ...open, op: 'o2' })).toEqual({ kind: 'resumable' });
    expect(await s.seal('r', { op: 's1', now: 2 })).toEqual({ lost: false, done: true, closed: [] });
    expect(await s.open('r', { ...open, op: 'o3' })).toEqual({ kind: 'sealed' });
  });

  it('enqueueIds: added with the batches closed, renumber when a later chunk ran first, gap past pos, sealed after the seal', async () => {
    const { queue, s } = scripts();
    await s.open('r', { ...open, op: 'o' });
    // Positions 0-2 are not in the run: a chunk from 3 leaves a gap (an earlier chunk not run yet, or lost).
    expect(await s.enqueue('r', chunk(queue, 'r', 'e0', 3, ['x']))).toEqual({ kind: 'gap' });
    expect(await s.enqueue('r', chunk(queue, 'r', 'e1', 0, ['a', 'b', 'c']))).toEqual({ kind: 'added', added: 3, closed: [0] });
    // A chunk numbered from position 0 again (it ran after the one above): its batch is closed.
    expect(await s.enqueue('r', chunk(queue, 'r', 'e2', 0, ['d']))).toEqual({ kind: 'renumber' });
    expect(await s.enqueue('r', chunk(queue, 'r', 'e3', 3, ['d']))).toEqual({ kind: 'added', added: 1, closed: [1] });
    // The producer numbered up to 5, the run holds 4 positions: a chunk it acknowledged was lost; nothing is sealed.
    expect(await s.seal('r', { op: 's0', now: 2, numberedTo: 5 })).toEqual({ lost: true });
    expect(await s.seal('r', { op: 's', now: 2, numberedTo: 4 })).toEqual({ lost: false, done: false, closed: [] });
    expect(await s.enqueue('r', chunk(queue, 'r', 'e4', 4, ['e']))).toEqual({ kind: 'sealed' });
  });

  it('findStrandedBatches: a batch holding IDs without its job, not one with a job or an empty one', async () => {
    const { queue, s } = scripts();
    await s.open('r', { ...open, op: 'o' });
    await s.enqueue('r', chunk(queue, 'r', 'e', 0, ['a', 'b', 'c', 'd']));
    const jobKey = (b: number) => `${runKeys(queue, 'r').prefix}test-job:${b}`;
    expect(await s.strandedBatches('r', [0, 1, 2], jobKey)).toEqual([0, 1]);
    await redis.hset(jobKey(1), 'name', 'batch');
    expect(await s.strandedBatches('r', [0, 1, 2], jobKey)).toEqual([0]);
  });

  it('commitBatch: lock_lost without the lock, committed with it (a replay answers the same), step_moved after, finalized once final', async () => {
    const { queue, s } = scripts();
    await s.open('r', { ...open, op: 'o' });
    await s.enqueue('r', chunk(queue, 'r', 'e', 0, ['a', 'b']));
    await s.seal('r', { op: 's', now: 2 });
    const lockKey = `${runKeys(queue, 'r').prefix}test-lock`;
    const c = { op: 'c1', lockKey, token: 'tok', batch: 0, step: 0, part: 'p0', succeeded: 1, failed: 0, errors: new Map<string, number>(), leftovers: [['b', '{"attempts":1}']] as [string, string][] };
    expect(await s.commit('r', c)).toEqual({ ok: false, reason: 'lock_lost' });
    await redis.set(lockKey, 'tok');
    expect(await s.commit('r', c)).toEqual({ ok: true, done: false });
    expect(await s.commit('r', c)).toEqual({ ok: true, done: false });
    expect(await s.commit('r', { ...c, op: 'c2' })).toEqual({ ok: false, reason: 'step_moved' });
    expect(await s.commit('r', { ...c, op: 'c3', step: 1, part: 'p1', leftovers: [] })).toEqual({ ok: true, done: true });
    const locks = new LockScripts(redis);
    const fin = runKeys(queue, 'r').finalizeLock;
    await redis.set(fin, 'me');
    expect(await s.markFinalized('r', 'other', 3)).toBe(false);
    expect(await s.markFinalized('r', 'me', 3)).toBe(true);
    expect(await s.commit('r', { ...c, op: 'c4', step: 2 })).toEqual({ ok: false, reason: 'finalized' });
    expect(await locks.extend(fin, 'other', 1000)).toBe(false);
    expect(await locks.extend(fin, 'me', 1000)).toBe(true);
    expect(await locks.release(fin, 'other')).toBe(false);
    expect(await locks.release(fin, 'me')).toBe(true);
    expect(await redis.exists(fin)).toBe(0);
  });
});
