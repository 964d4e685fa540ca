import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import type { Config } from '../../src/config.js';
import { compileIdUrl } from '../../src/ids/id-url.js';
import { requestTemplateOf } from '../../src/ids/request-template.js';
import { enqueueRun } from '../../src/runs/enqueue-run.js';
import { RunStore, type RunStatus } from '../../src/runs/run-store.js';
import type { FailedLine, ResultLine, Summary } from '../../src/sinks/sink.js';
import type { BatchJobData } from '../../src/runs/batch-job-data.js';
import { startWorker, type StartWorkerOptions, type WorkerHandle } from '../../src/workers/start-worker.js';
import { cleanQueue, newRedis, quietLogger } from './test-env.js';
import { bullPrefix } from '../../src/redis/keys.js';

export interface PullOutput {
  status: RunStatus;
  results: ResultLine[];
  failed: FailedLine[];
  summary: Summary;
}

export function readJsonl<T>(file: string): T[] {
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as T);
}

export function readOutput(dir: string, run: string): Omit<PullOutput, 'status'> {
  return {
    results: readJsonl<ResultLine>(path.join(dir, run, 'results.jsonl')),
    failed: readJsonl<FailedLine>(path.join(dir, run, 'failed.jsonl')),
    summary: JSON.parse(readFileSync(path.join(dir, run, 'summary.json'), 'utf8')) as Summary,
  };
}

/** Enqueue + N in-process workers until the run is complete; cleans the queue's keys after. */
export async function pullInProcess(config: Config, ids: string[], options: { run?: string; workers?: number; timeoutMs?: number; idsText?: string; /** IDs file extension: .csv, .tsv, .jsonl read columns. */ ext?: string; /** More options for each worker (events, sink, transform). */ worker?: Partial<Omit<StartWorkerOptions, 'config' | 'connection' | 'logger'>>; /** Told of each worker started. */ onWorker?: (w: WorkerHandle) => void } = {}): Promise<PullOutput> {
  if (config.sink.type !== 'file') throw new Error('file sink only');
  const run = options.run ?? 'run1';
  const redis = newRedis();
  const queue = new Queue<BatchJobData>(config.queue, { connection: redis, prefix: bullPrefix(config.queue) });
  const store = new RunStore(redis, config.queue);
  const idsFile = path.join(config.sink.dir, `${run}.ids${options.ext ?? '.txt'}`);
  writeFileSync(idsFile, options.idsText ?? `${ids.join('\n')}\n`);
  const workers = [];
  try {
    await enqueueRun({ store, queue, run, source: idsFile, batchSize: config.enqueue.batchSize, urlFor: compileIdUrl(config.request.url), template: requestTemplateOf(config) });
    for (let i = 0; i < (options.workers ?? 1); i++) {
      const w = await startWorker({ config, connection: redis, logger: quietLogger(), ...options.worker });
      workers.push(w);
      options.onWorker?.(w);
    }
    const deadline = Date.now() + (options.timeoutMs ?? 30_000);
    let status = await store.status(run);
    while (!status?.complete) {
      if (Date.now() > deadline) throw new Error(`run not complete in time: ${JSON.stringify(status)}`);
      await sleep(50);
      status = await store.status(run);
    }
    return { status, ...readOutput(config.sink.dir, run) };
  } finally {
    await Promise.all(workers.map((w) => w.close(5000)));
    await queue.close();
    await cleanQueue(redis, config.queue);
    redis.disconnect();
  }
}
