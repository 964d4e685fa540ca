// A custom pullq sink, to show that the exported Sink interface is enough:
// every outcome of a run in ONE gzip NDJSON file, `<dir>/<run>.ndjson.gz`, each
// line the results.jsonl or failed.jsonl line plus `"kind": "result" | "failed"`,
// and the run's summary in `<dir>/<run>.summary.json`.
//
// It keeps pullq's exactly-once promise the way docs/sinks.md describes, with
// a different technique from the built-in file sink: a part is written aside
// and renamed into place, so a part file either is whole or is not there.
//
// Check it with the conformance kit (test/sink-conformance.test.ts does):
//   sinkConformanceCases({ setup: () => ({ module: '/abs/dist/examples/custom-sink.js', export: 'NdjsonGzipSink', args: [dir], readOutput }) })

import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, mkdir, open, readFile, rename, rm, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { createPullq, PullqError, RunFinalizedError, type FailedLine, type FinalizeFence, type ResultLine, type Sink, type Summary } from 'pullq';

const gzipAsync = promisify(gzip);
/** Lines are compressed and written in chunks of about this many characters: memory stays bounded for big parts. */
const CHUNK = 1024 * 1024;

/** One gzip NDJSON file per run, with a `kind` on each line. */
export class NdjsonGzipSink implements Sink {
  constructor(readonly dir: string) {}

  location(run: string): string {
    return path.join(this.dir, `${run}.ndjson.gz`);
  }

  private partsDir(run: string): string {
    return path.join(this.dir, `${run}.parts`);
  }

  private partFile(run: string, part: string): string {
    return path.join(this.partsDir(run), `${part}.ndjson.gz`);
  }

  private summaryFile(run: string): string {
    return path.join(this.dir, `${run}.summary.json`);
  }

  /** The summary is renamed into place last: while it exists, the run's output is final. */
  private finalized(run: string): Promise<boolean> {
    return access(this.summaryFile(run)).then(
      () => true,
      () => false,
    );
  }

  /** The published summary, or undefined (not there, or unreadable). */
  private async published(run: string): Promise<Summary | undefined> {
    try {
      return JSON.parse(await readFile(this.summaryFile(run), 'utf8')) as Summary;
    } catch {
      return undefined;
    }
  }

  async writePart(run: string, part: string, results: ResultLine[], failures: FailedLine[]): Promise<void> {
    // The published summary tells the worker whose output this is (this run's, after Redis lost its finalize, or an earlier run's).
    if (await this.finalized(run)) throw new RunFinalizedError(run, await this.published(run));
    await mkdir(this.partsDir(run), { recursive: true });
    // Written aside, then renamed: a process killed mid-write leaves a temp file, never half a part under
    // the part's name; a retry of the same part renames over the first (idempotent by name).
    const file = this.partFile(run, part);
    const tmp = `${file}.tmp-${randomBytes(6).toString('hex')}`;
    try {
      const out = await open(tmp, 'w', 0o640);
      try {
        const lines = new GzipLines(out);
        for (const r of results) await lines.add(JSON.stringify({ kind: 'result', ...r }));
        for (const f of failures) await lines.add(JSON.stringify({ kind: 'failed', ...f }));
        await lines.end();
        await out.sync(); // durable before the step commits in Redis
      } finally {
        await out.close();
      }
      await rename(tmp, file);
      await syncDir(this.partsDir(run));
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
    // Finalized while this wrote: cleanup may already have run, so this part would be left behind.
    if (await this.finalized(run)) {
      await this.discardPart(run, part);
      throw new RunFinalizedError(run, await this.published(run));
    }
  }

  async discardPart(run: string, part: string): Promise<void> {
    await unlink(this.partFile(run, part)).catch(() => undefined);
  }

  async finalize(run: string, parts: string[], summary: Summary, extraFailed: () => AsyncIterable<string[]>, fence?: FinalizeFence): Promise<void> {
    // Published by this very run already (same startedAt): Redis lost the finalize, maybe after cleanup dropped the parts.
    if ((await this.published(run))?.startedAt === summary.startedAt) {
      await fence?.check();
      return;
    }
    await mkdir(this.dir, { recursive: true });
    const target = this.location(run);
    // Every call its own temp files: two finalizers (one whose lock expired) never write the same file.
    const suffix = `.tmp-${randomBytes(6).toString('hex')}`;
    const [tmp, summaryTmp] = [`${target}${suffix}`, `${this.summaryFile(run)}${suffix}`];
    try {
      const out = await open(tmp, 'w', 0o640);
      try {
        // Parts are gzip members: concatenated, they are one valid gzip stream (RFC 1952).
        for (const part of parts) {
          for await (const chunk of createReadStream(this.partFile(run, part))) await writeAll(out, chunk as Buffer);
        }
        const lines = new GzipLines(out);
        // extraFailed gives ready failed.jsonl lines (JSON text), e.g. the run's invalid IDs.
        for await (const chunk of extraFailed()) for (const line of chunk) await lines.add(JSON.stringify({ kind: 'failed', ...(JSON.parse(line) as FailedLine) }));
        await lines.end(true);
        await out.sync();
      } finally {
        await out.close();
      }
      const s = await open(summaryTmp, 'w', 0o640);
      try {
        await s.writeFile(`${JSON.stringify(summary, null, 2)}\n`);
        await s.sync();
      } finally {
        await s.close();
      }
      // Nothing is visible before this: a finalizer that lost its lock stops here.
      await fence?.check();
      await rename(tmp, target);
      await rename(summaryTmp, this.summaryFile(run));
      await syncDir(this.dir);
    } finally {
      await unlink(tmp).catch(() => undefined);
      await unlink(summaryTmp).catch(() => undefined);
    }
  }

  async cleanup(run: string): Promise<void> {
    await rm(this.partsDir(run), { recursive: true, force: true });
  }
}

/** Collects NDJSON lines and writes them as gzip members of about CHUNK characters each. */
class GzipLines {
  private pending: string[] = [];
  private size = 0;
  private members = 0;

  constructor(private readonly out: FileHandle) {}

  async add(line: string): Promise<void> {
    this.pending.push(`${line}\n`);
    this.size += line.length + 1;
    if (this.size >= CHUNK) await this.flush();
  }

  /** Writes what is pending; `nonEmpty`: at least one member, so an empty output is still a gzip file. */
  async end(nonEmpty = false): Promise<void> {
    if (this.pending.length || (nonEmpty && this.members === 0)) await this.flush();
  }

  private async flush(): Promise<void> {
    const data = await gzipAsync(this.pending.join(''));
    this.pending = [];
    this.size = 0;
    this.members++;
    await writeAll(this.out, data);
  }
}

async function writeAll(fh: FileHandle, data: Buffer): Promise<void> {
  for (let at = 0; at < data.length; ) at += (await fh.write(data, at, data.length - at)).bytesWritten;
}

/** fsync a directory: the renames in it survive a crash. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

// ---- Run as a script: a pull through the library API into this sink.
//   API_URL=http://127.0.0.1:8080 node dist/examples/custom-sink.js ./out 1 2 3
// (`npm run example-api` serves such an API; REDIS_URL names the Redis, default 127.0.0.1:6379.)

async function main(argv: string[]): Promise<number> {
  const [dir, ...ids] = argv;
  if (dir === undefined || ids.length === 0) {
    process.stderr.write('usage: custom-sink <out-dir> <id>...\n');
    return 1;
  }
  const pullq = createPullq(
    {
      redis: { url: process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379' },
      queue: process.env['PULLQ_QUEUE'] ?? 'custom-sink-example',
      request: { url: `${process.env['API_URL'] ?? 'http://127.0.0.1:8080'}/items/{id}` },
      auth: process.env['API_TOKEN'] ? { type: 'header', tokens: [process.env['API_TOKEN']] } : { type: 'none' },
    },
    { sink: new NdjsonGzipSink(dir) },
  );
  try {
    const r = await pullq.pull(ids);
    if (!r.complete) {
      process.stderr.write(`run ${r.run} not complete: ${r.reason}\n`);
      return 2;
    }
    const s = r.status!;
    process.stdout.write(`run ${r.run} complete: ${s.total} IDs, ${s.succeeded} succeeded, ${s.failed} failed → ${r.location}\n`);
    return 0;
  } finally {
    await pullq.close();
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`custom-sink: ${err instanceof PullqError ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
