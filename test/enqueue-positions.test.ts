import { afterAll, describe, expect, it } from 'vitest';
import { RunStore, bucketOf, fnv1a32 } from '../src/runs/run-store.js';
import { cleanQueue, newRedis, uniqueQueue } from './helpers/test-env.js';

// enqueueIds-n.lua declares every key it touches (Redis Cluster): the
// producer numbers IDs by position, a position's batch is fixed, and a chunk
// that runs after a later one is numbered again instead of adding to a batch
// that may already be closed.

const redis = newRedis();
const queues: string[] = [];
afterAll(async () => {
  for (const q of queues) await cleanQueue(redis, q);
  redis.disconnect();
});

function newStore() {
  const queue = uniqueQueue('pos');
  queues.push(queue);
  return { queue, store: new RunStore(redis, queue) };
}

async function batches(store: RunStore, run: string, upTo: number): Promise<string[][]> {
  const out: string[][] = [];
  for (let b = 0; b <= upTo; b++) out.push(await redis.lrange(store.keys(run).batch(b), 0, -1));
  return out;
}

describe('enqueue by position', () => {
  it('IDs fill batches in order; duplicates are dropped; a batch closes when its last position is reached', async () => {
    const { store } = newStore();
    await store.open('r', { source: 't', expectedIds: 100, batchSize: 4 });
    const a = await store.addIds('r', ['a', 'b', 'c', 'd', 'e', 'a'], 4, 6);
    expect(a).toEqual({ added: 5, closed: [0] });
    const b = await store.addIds('r', ['f', 'b', 'g'], 4, 6);
    // Positions 6, 7, 8: batch 1 (positions 4-7) closes with e, f (a and b were seen before).
    expect(b).toEqual({ added: 2, closed: [1] });
    expect(await batches(store, 'r', 2)).toEqual([['a', 'b', 'c', 'd'], ['e', 'f'], ['g']]);
    const sealed = await store.seal('r');
    expect(sealed.closed).toEqual([2]);
    expect((await store.status('r'))?.total).toBe(7);
  });

  it('a chunk that runs after a later one (another producer) is numbered again: no ID lands in a closed batch', async () => {
    const { queue, store } = newStore();
    await store.open('r', { source: 't', expectedIds: 100, batchSize: 3 });
    // This producer has numbered from position 0 (its first call); a second one of the same run goes first.
    expect(await store.addIds('r', [], 3, 6)).toEqual({ added: 0, closed: [] });
    const other = new RunStore(redis, queue);
    const first = await other.addIds('r', ['x1', 'x2', 'x3', 'x4', 'x5', 'x6', 'x7'], 3, 6);
    expect(first.closed).toEqual([0, 1]);
    const late = await store.addIds('r', ['y1', 'y2'], 3, 6);
    expect(late.added).toBe(2);
    const all = await batches(store, 'r', 4);
    expect(all[0]).toEqual(['x1', 'x2', 'x3']);
    expect(all[1]).toEqual(['x4', 'x5', 'x6']);
    // y1 and y2 went after position 7, never into batches 0 and 1 (already closed).
    expect(all.flat().sort()).toEqual(['x1', 'x2', 'x3', 'x4', 'x5', 'x6', 'x7', 'y1', 'y2']);
    expect(all.slice(2).flat().sort()).toEqual(['x7', 'y1', 'y2']);
  });
});

describe('dedupe buckets and the IDs argument', () => {
  it('bucketOf is the first seenBits bits of fnv1a32 (the bucket an ID was deduped in before stays its bucket)', () => {
    for (const bits of [0, 1, 6, 14, 20]) {
      for (const id of ['', 'a', '10000000', 'é☃ x', 'id with spaces', '\u{1F600}', 'x'.repeat(2048)]) {
        expect(bucketOf(id, bits)).toBe(Math.floor(fnv1a32(id) / 2 ** (32 - bits)));
      }
    }
  });

  it('IDs with spaces, non-ASCII and many buckets land once each, in order; a line break in an ID is refused', async () => {
    const { store } = newStore();
    await store.open('r', { source: 't', expectedIds: 100_000, batchSize: 5 });
    const ids = ['a b', 'é☃', '  x', '\u{1F600}', 'a b', 'q', ...Array.from({ length: 20 }, (_, i) => `id-${i}`)];
    const r = await store.addIds('r', ids, 5, 11);
    expect(r.added).toBe(25);
    const all = (await batches(store, 'r', 5)).flat();
    expect(all).toEqual(ids.filter((id, i) => ids.indexOf(id) === i));
    expect((await store.addIds('r', ids.slice(0, 6), 5, 11)).added).toBe(0);
    await expect(store.addIds('r', ['ok', 'a\nb'], 5, 11)).rejects.toThrow(/line break/);
  });
});
