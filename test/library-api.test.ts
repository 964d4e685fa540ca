import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startExampleApi, type ExampleApi } from '../scripts/example-api-server.js';
import { ConfigError, createPullq, InputError, RunFinalizedError, type FailedLine, type Pullq, type ResultLine, type Sink, type Summary } from '../src/index.js';
import { pullInProcess } from './helpers/pull-in-process.js';
import { newRedis, cleanQueue, quietLogger, redisUrl, tempDir, testConfig, uniqueQueue } from './helpers/test-env.js';

// The library as a user imports it (src/index.ts is what `import … from 'pullq'` gives).

const tmp = tempDir('library');
afterAll(() => tmp.remove());
let api: ExampleApi | undefined;
let pullq: Pullq | undefined;
const queues: string[] = [];
afterEach(async () => {
  await pullq?.close();
  pullq = undefined;
  await api?.close();
  api = undefined;
  const redis = newRedis();
  for (const q of queues.splice(0)) await cleanQueue(redis, q);
  redis.disconnect();
});

/** A sink that keeps everything in memory: enough of the Sink interface for a library user's own store. */
class MemorySink implements Sink {
  readonly parts = new Map<string, { results: ResultLine[]; failures: FailedLine[] }>();
  readonly final = new Map<string, { results: ResultLine[]; failed: FailedLine[]; summary: Summary }>();
  async writePart(run: string, part: string, results: ResultLine[], failures: FailedLine[]): Promise<void> {
    if (this.final.has(run)) throw new RunFinalizedError(run);
    this.parts.set(`${run}/${part}`, { results, failures });
  }
  async discardPart(run: string, part: string): Promise<void> {
    this.parts.delete(`${run}/${part}`);
  }
  async finalize(run: string, parts: string[], summary: Summary, extraFailed: () => AsyncIterable<string[]>): Promise<void> {
    const results = parts.flatMap((p) => this.parts.get(`${run}/${p}`)?.results ?? []);
    const failed = parts.flatMap((p) => this.parts.get(`${run}/${p}`)?.failures ?? []);
    for await (const lines of extraFailed()) failed.push(...lines.map((l) => JSON.parse(l) as FailedLine));
    this.final.set(run, { results, failed, summary });
  }
  async cleanup(run: string): Promise<void> {
    for (const key of this.parts.keys()) if (key.startsWith(`${run}/`)) this.parts.delete(key);
  }
  location(run: string): string {
    return `memory:${run}`;
  }
}

async function setup(extra: Record<string, unknown> = {}) {
  api = await startExampleApi({});
  const queue = uniqueQueue('lib');
  queues.push(queue);
  // The same object a pullq.config.json holds: createPullq validates it.
  return { queue, redis: { url: redisUrl() }, request: { url: `${api.url}/items/{id}`, timeoutMs: 2000 }, retry: { attempts: 3, baseDelayMs: 50, maxDelayMs: 200 }, enqueue: { batchSize: 5 }, sink: { type: 'file', dir: tmp.dir }, ...extra } as const;
}

describe('createPullq', () => {
  it('dashboard({ password: "" }) is refused with a ConfigError, not served without a password and without the host check', async () => {
    const config = await setup();
    pullq = createPullq(config, { logger: quietLogger() });
    const served = pullq.dashboard({ port: 0, password: '' });
    // Served, it would have to be closed: a refusal leaves nothing to close.
    served.then((d) => d.close(), () => undefined);
    await expect(served).rejects.toBeInstanceOf(ConfigError);
    await expect(served).rejects.toThrow(/dashboard password is empty/);
  });

  it('pull: an array of IDs into a custom sink, shaped by transform; duplicates once; a summary to read', async () => {
    const config = await setup();
    const sink = new MemorySink();
    const seen: string[] = [];
    pullq = createPullq(config, {
      sink,
      logger: quietLogger(),
      transform: (res, id) => {
        seen.push(id);
        return { name: (res.data as { name: string }).name, status: res.status };
      },
    });
    const ids = ['1', '2', '3', '2', 'x y', '..'];
    const r = await pullq.pull(ids, { run: 'lib-array' });
    expect(r).toMatchObject({ run: 'lib-array', complete: true, location: 'memory:lib-array' });
    expect(r.status).toMatchObject({ total: 5, succeeded: 4, failed: 1, complete: true });
    const out = sink.final.get('lib-array')!;
    expect(out.results.map((l) => l.id).sort()).toEqual(['1', '2', '3', 'x y']);
    for (const l of out.results) expect(l.data).toEqual({ name: `item ${l.id}`, status: 200 });
    expect(out.failed).toEqual([expect.objectContaining({ id: '..', error: 'invalid_id' })]);
    expect(out.summary).toMatchObject({ run: 'lib-array', total: 5, succeeded: 4, failed: 1 });
    expect(seen.sort()).toEqual(['1', '2', '3', 'x y']);
    for (const id of ['1', '2', '3']) expect(api!.requestsById.get(id)).toBe(1);
    // Parts of a finalized run are dropped from the sink.
    expect([...sink.parts.keys()].filter((k) => k.startsWith('lib-array/'))).toEqual([]);
  });

  it('enqueue from an async iterable, a worker handle, watch() until complete, then status()', async () => {
    const config = await setup();
    pullq = createPullq(config, { logger: quietLogger() });
    async function* ids() {
      for (let i = 0; i < 23; i++) yield `a${i}`;
    }
    const e = await pullq.enqueue(ids(), { run: 'lib-iter' });
    expect(e).toMatchObject({ run: 'lib-iter', read: 23, added: 23, total: 23, resumed: false });
    const worker = await pullq.worker({ concurrency: 4 });
    const readings = [];
    for await (const s of pullq.watch('lib-iter', { everyMs: 100 })) readings.push(s);
    const last = readings.at(-1)!;
    expect(last).toMatchObject({ complete: true, succeeded: 23, failed: 0 });
    expect(readings.length).toBeGreaterThan(0);
    expect(worker.stats.succeeded).toBe(23);
    await worker.close();
    const report = await pullq.status('lib-iter');
    expect(report).toMatchObject({ run: 'lib-iter', complete: true, total: 23, etaSeconds: null });
    expect(report.queueJobs).toMatchObject({ active: 0, waiting: 0 });
    // The newest run without a name; an unknown one is an InputError with a stable code.
    expect((await pullq.status()).run).toBe('lib-iter');
    await expect(pullq.status('no-such-run')).rejects.toMatchObject({ code: 'input_invalid' });
    expect(await pullq.runStatus('no-such-run')).toBeNull();
  });

  it('a transform that throws fails that ID as transform_failed; the others are stored', async () => {
    const config = await setup();
    const sink = new MemorySink();
    pullq = createPullq(config, {
      sink,
      logger: quietLogger(),
      transform: (res, id) => {
        if (id === 'bad') throw new Error('no name field');
        return res.data;
      },
    });
    const r = await pullq.pull(['ok1', 'bad', 'ok2'], { run: 'lib-throw' });
    expect(r.complete).toBe(true);
    const out = sink.final.get('lib-throw')!;
    expect(out.results.map((l) => l.id).sort()).toEqual(['ok1', 'ok2']);
    expect(out.failed).toEqual([{ id: 'bad', status: 200, error: 'transform_failed', message: 'transform failed: no name field', attempts: 1 }]);
  });

  it('check() and plan() give objects; bad input and a bad config fail with stable codes', async () => {
    const config = await setup({ budget: { requests: 10, perSeconds: 1 } });
    pullq = createPullq(config, { logger: quietLogger() });
    const check = await pullq.check();
    expect(check).toMatchObject({ ok: true, credentials: [expect.objectContaining({ credential: 'anonymous', verdict: 'valid' })] });
    const plan = await pullq.plan(['1', '2', '3', '..']);
    expect(plan).toMatchObject({ ids: 4, invalid: 1, budgetPerSecond: 10, seconds: 0.3 });
    await expect(pullq.enqueue(42 as unknown as string[])).rejects.toBeInstanceOf(InputError);
    await expect(pullq.enqueue([1, 2] as unknown as string[], { run: 'lib-bad' })).rejects.toThrow('ID at position 1 is number, not a string');
    expect(() => createPullq({ ...config, retry: { attempts: 0 } })).toThrow(ConfigError);
    expect(() => createPullq({ ...config, retry: { attempts: 0 } })).toThrow('retry.attempts: must be > 0');
    await pullq.close();
    await expect(pullq.status()).rejects.toThrow('this pullq is closed');
  });
});

describe('createPullq: lifecycle, events and run names', () => {
  it('IDs from code without a run name: a new run each call, even in the same second', async () => {
    const config = await setup();
    const sink = new MemorySink();
    pullq = createPullq(config, { sink, logger: quietLogger() });
    const [a, b] = await Promise.all([pullq.pull(['s1', 's2']), pullq.pull(['s3'])]);
    expect(a.run).not.toBe(b.run);
    expect(a.run).toMatch(/^ids-\d{8}T\d{6}Z-[0-9a-f]{6}$/);
    expect(sink.final.get(a.run)!.results.map((l) => l.id).sort()).toEqual(['s1', 's2']);
    expect(sink.final.get(b.run)!.results.map((l) => l.id)).toEqual(['s3']);
  });

  it('events name a credential by id and label, never its secret; the worker says how many credentials it has', async () => {
    const config = await setup({ auth: { type: 'header', tokens: [{ name: 'alpha', token: 'example-token-1' }] } });
    pullq = createPullq(config, { logger: quietLogger() });
    await pullq.enqueue(['e1', 'e2', 'e3'], { run: 'lib-events' });
    const seen: unknown[] = [];
    const worker = await pullq.worker({ events: { request: (e) => seen.push(e), committed: (e) => seen.push(e) } });
    expect(worker.credentials).toBe(1);
    for await (const s of pullq.watch('lib-events', { everyMs: 50 })) if (s.complete) break;
    expect((await worker.health())[0]).toMatchObject({ label: 'alpha', requests: 3 });
    await worker.close();
    const requests = seen.filter((e): e is { credential: { id: string; label: string } } => typeof e === 'object' && e !== null && 'credential' in e);
    expect(requests).toHaveLength(3);
    for (const e of requests) expect(Object.keys(e.credential).sort()).toEqual(['id', 'label']);
    expect(JSON.stringify(seen)).not.toContain('example-token-1');
    expect(seen.some((e) => (e as { run?: string }).run === 'lib-events')).toBe(true);
  });

  it('close() stops a pull under way: it resolves interrupted, and pulling the run again completes it', async () => {
    const config = await setup({ budget: { requests: 20, perSeconds: 1 } });
    const sink = new MemorySink();
    pullq = createPullq(config, { sink, logger: quietLogger() });
    const ids = Array.from({ length: 60 }, (_, i) => `c${i}`);
    const running = pullq.pull(ids, { run: 'lib-close' });
    for await (const s of pullq.watch('lib-close', { everyMs: 50 })) if (s.succeeded > 0 || s.complete) break;
    await pullq.close();
    const r = await running;
    expect(r).toMatchObject({ complete: false, reason: 'interrupted' });
    pullq = createPullq(config, { sink, logger: quietLogger() });
    const again = await pullq.pull(ids, { run: 'lib-close' });
    expect(again.complete).toBe(true);
    expect(sink.final.get('lib-close')!.results.map((l) => l.id).sort()).toEqual([...ids].sort());
  });

  it('pagination with output.mode "id" and a sink without readPart is refused at start, naming what to do', async () => {
    const config = await setup();
    const request = { url: `${api!.url}/users/{id}/events`, timeoutMs: 2000, pagination: { type: 'page', param: 'page', itemsPath: 'items' } } as const;
    pullq = createPullq({ ...config, request }, { sink: new MemorySink(), logger: quietLogger() });
    await expect(pullq.pull(['p1'], { run: 'lib-pages' })).rejects.toThrow('output.mode "id" with request.pagination: the sink given to the worker cannot read its parts back (it needs readPart)');
  });
});

describe('output.select', () => {
  it('keeps only the named JSON fields of each body (CLI users)', async () => {
    api = await startExampleApi({});
    const config = testConfig({ queue: uniqueQueue('sel'), request: { url: `${api.url}/items/{id}` }, sink: { type: 'file', dir: tmp.dir }, output: { select: ['name', 'missing.field'] } });
    queues.push(config.queue);
    const out = await pullInProcess(config, ['7', '8'], { run: 'select' });
    expect(out.results).toHaveLength(2);
    for (const r of out.results) expect(r.data).toEqual({ name: `item ${r.id}` });
  });

  it('is checked by the schema, naming the path', () => {
    expect(() => testConfig({ request: { url: 'http://x/{id}' }, output: { select: ['a..b'] } })).toThrow('output.select.0: must be a dot path');
    expect(() => testConfig({ request: { url: 'http://x/{id}' }, output: { select: [] } })).toThrow('output.select: must name at least one field');
  });
});
