import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExampleApi, type ExampleApi } from '../scripts/example-api-server.js';
import { createPullq, FileSink, type FailedLine, type ResultLine } from '../src/index.js';
import { batchFailureVerdict, POISON_ATTEMPTS } from '../src/policy/batch-failure-verdict.js';
import { BLIP_DELAY_MAX_MS, blipDelayMs } from '../src/policy/blip-delay.js';
import { readOutput } from './helpers/pull-in-process.js';
import { cleanQueue, newRedis, quietLogger, redisUrl, tempDir, uniqueQueue } from './helpers/test-env.js';

// Issue #21, part 4: a run was aborted after 3 failed attempts of a batch of any kind (BullMQ's attemptsMade counts
// Redis and database blips too). Only the batch's own failures count now: POISON_ATTEMPTS of them abort the run.

describe('batchFailureVerdict: what a failed batch attempt does', () => {
  const table: [string, boolean, number, { action: 'retry' | 'abort'; ownFailures: number }][] = [
    ['a blip never counts', true, 0, { action: 'retry', ownFailures: 0 }],
    ['a blip after two own failures: still retried', true, POISON_ATTEMPTS - 1, { action: 'retry', ownFailures: POISON_ATTEMPTS - 1 }],
    ['the first own failure', false, 0, { action: 'retry', ownFailures: 1 }],
    ['the second', false, 1, { action: 'retry', ownFailures: 2 }],
    [`the ${POISON_ATTEMPTS}rd aborts the run`, false, POISON_ATTEMPTS - 1, { action: 'abort', ownFailures: POISON_ATTEMPTS }],
    ['past it (a count from before a lower limit): aborts', false, POISON_ATTEMPTS + 4, { action: 'abort', ownFailures: POISON_ATTEMPTS + 5 }],
  ];
  it.each(table)('%s', (_, transient, before, verdict) => {
    expect(batchFailureVerdict(transient, before)).toEqual(verdict);
  });
});

describe('blipDelayMs: the wait after a blip (no BullMQ attempt spent)', () => {
  const table: [number, number | undefined, number][] = [
    [0, undefined, 1000],
    [1, undefined, 2000],
    [4, undefined, 16_000],
    [5, undefined, BLIP_DELAY_MAX_MS],
    [19, undefined, BLIP_DELAY_MAX_MS],
    [10_000, undefined, BLIP_DELAY_MAX_MS],
    [3, 50, 50],
    [-1, undefined, 1000],
  ];
  it.each(table)('after %i blips (cap %s): %i ms', (blips, max, ms) => {
    expect(blipDelayMs(blips, max)).toBe(ms);
  });
});

/** A file sink whose writePart fails as scripted, one entry per call (then works): a connection error or its own. */
class ScriptedSink extends FileSink {
  calls = 0;
  constructor(dir: string, private readonly script: ('blip' | 'own')[]) {
    super(dir);
  }
  override async writePart(run: string, part: string, results: ResultLine[], failures: FailedLine[]): Promise<void> {
    const next = this.script[this.calls++];
    if (next === 'blip') throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    if (next === 'own') throw Object.assign(new Error('the sink refuses this part'), { code: 'EREFUSED_PART' });
    await super.writePart(run, part, results, failures);
  }
}

const tmp = tempDir('attempts');
const queues: string[] = [];
let api: ExampleApi;
const ids = ['a-1', 'a-2', 'a-3'];

beforeAll(async () => {
  // Blips wait at most 50 ms here (1 s doubling to 30 s by default).
  process.env['PULLQ_BLIP_DELAY_MAX_MS'] = '50';
  api = await startExampleApi({});
});
afterAll(async () => {
  delete process.env['PULLQ_BLIP_DELAY_MAX_MS'];
  await api.close();
  const redis = newRedis();
  for (const q of queues) await cleanQueue(redis, q);
  redis.disconnect();
  tmp.remove();
});

async function pullWith(run: string, script: ('blip' | 'own')[], signal?: AbortSignal) {
  const dir = path.join(tmp.dir, run);
  const sink = new ScriptedSink(dir, script);
  // A queue per test: the two run at once (own failures wait out BullMQ's backoff, 2 + 4 s; blips ≤ 50 ms here).
  const queue = uniqueQueue('attempts');
  queues.push(queue);
  // One batch (batchSize > IDs): every writePart is that batch's.
  const pullq = createPullq({ queue, redis: { url: redisUrl() }, request: { url: `${api.url}/items/{id}` }, enqueue: { batchSize: 10 }, sink: { type: 'file', dir } }, { logger: quietLogger(), sink });
  try {
    return { r: await pullq.pull(ids, { run, signal }), sink, dir };
  } finally {
    await pullq.close();
  }
}

describe.concurrent('a batch whose attempts fail', () => {
  it('twice by a connection blip, then once by its own error, then succeeds: the run completes (not aborted), every ID once', async () => {
    const { r, sink, dir } = await pullWith('blips', ['blip', 'blip', 'own']);
    expect(sink.calls).toBe(4);
    expect(r).toMatchObject({ complete: true, reason: undefined });
    const out = readOutput(dir, 'blips');
    expect(out.results.map((x) => x.id).sort()).toEqual(ids);
    expect(out.failed).toEqual([]);
  });

  it('25 blips in a row (more than BullMQ\'s 20 attempts): the run completes; no attempt spent, waits capped (PULLQ_BLIP_DELAY_MAX_MS)', async () => {
    // Before the fix each blip spent a BullMQ attempt with its exponential backoff (2 s, 4 s, 8 s…): stopped at 15 s, not complete.
    const { r, sink } = await pullWith('many', Array.from({ length: 25 }, () => 'blip' as const), AbortSignal.timeout(15_000));
    expect(r).toMatchObject({ complete: true, reason: undefined });
    expect(sink.calls).toBe(26);
  });

  it(`${POISON_ATTEMPTS} own failures (a blip among them) abort the run naming the cause`, async () => {
    const { r, sink } = await pullWith('own', ['own', 'blip', 'own', 'own']);
    expect(sink.calls).toBe(4);
    expect(r.complete).toBe(false);
    expect(r.reason).toMatch(/^run own cannot complete: batch 0 cannot be written: the sink refuses this part/);
  });
});
