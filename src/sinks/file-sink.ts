import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, chmod, mkdir, open, readdir, readFile, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { pipeline, type Readable } from 'node:stream';
import { promisify } from 'node:util';
import { createGunzip, createGzip, gunzip, gzip } from 'node:zlib';
import { RunFinalizedError, type FailedLine, type FinalizeFence, type ResultLine, type Sink, type Summary } from './sink.js';
import type { ValidatorEntry } from './validators.js';
import { buildValidatorsFile, validatorLine, ValidatorsFile, ValidatorsUnreadableError } from './validators-file.js';
import { writeAll } from './write-all.js';

/** Output is not world-readable: it may hold whatever the API returned. */
export const FILE_MODE = 0o640;
export const DIR_MODE = 0o750;
/** Lines are written in chunks of about this many bytes: a step's lines never join into one string past V8's limit. */
const WRITE_CHUNK = 4 * 1024 * 1024;

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

export interface FileSinkOptions {
  /**
   * "gzip": results.jsonl.gz and failed.jsonl.gz instead of .jsonl (summary.json
   * stays plain: it is small and what a script reads first). Each part is
   * compressed by the worker that writes it, so finalize only concatenates:
   * the files are multi-member gzip streams (RFC 1952 §2.2), which gunzip,
   * zcat, Python's gzip and Node's zlib read as one stream.
   */
  compress?: 'gzip';
}

type Kind = 'results' | 'failed';

/**
 * The SPEC's file output: out/<run>/{results,failed}.jsonl (or .jsonl.gz) and
 * summary.json. Parts live in out/<run>/parts/ until the run is finalized.
 * Replicas on several machines must share `dir` (a volume); otherwise use the
 * Postgres sink.
 */
export class FileSink implements Sink {
  readonly dir: string;
  readonly compress: 'gzip' | undefined;

  constructor(dir: string, options: FileSinkOptions = {}) {
    this.dir = dir;
    this.compress = options.compress;
  }

  location(run: string): string {
    const dir = path.join(this.dir, run);
    return `${dir}/${this.outputName('results')}, ${this.outputName('failed')}, summary.json`;
  }

  private outputName(kind: Kind): string {
    return `${kind}.jsonl${this.ext()}`;
  }

  private ext(gzipped = this.compress === 'gzip'): string {
    return gzipped ? '.gz' : '';
  }

  private partsDir(run: string): string {
    return path.join(this.dir, run, 'parts');
  }

  private partFile(run: string, part: string, kind: Kind, gzipped = this.compress === 'gzip'): string {
    return path.join(this.partsDir(run), `${part}.${kind}.jsonl${this.ext(gzipped)}`);
  }

  /** A part's validators (request.conditional): plain JSON lines, whatever `compress` says. */
  private validatorsPartFile(run: string, part: string): string {
    return path.join(this.partsDir(run), `${part}.validators.jsonl`);
  }

  /**
   * summary.json is renamed into place last: while it exists, the run's output is final.
   * Resolves to the refusal a late write gets then (naming the published summary when it parses), else undefined.
   */
  private async refusalIfFinalized(run: string): Promise<RunFinalizedError | undefined> {
    let text: string;
    try {
      text = await readFile(path.join(this.dir, run, 'summary.json'), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      // There, but unreadable (permissions): final all the same.
      return new RunFinalizedError(run);
    }
    try {
      return new RunFinalizedError(run, JSON.parse(text) as Summary);
    } catch {
      return new RunFinalizedError(run);
    }
  }

  /** Throws the refusal a late write gets when the run's output is final. */
  private async refuseIfFinalized(run: string): Promise<void> {
    const refusal = await this.refusalIfFinalized(run);
    if (refusal) throw refusal;
  }

  async writePart(run: string, part: string, results: ResultLine[], failures: FailedLine[]): Promise<void> {
    // A worker that stalled past the run's end: its part could never be output, and cleanup has run already.
    await this.refuseIfFinalized(run);
    await makeDirs(this.partsDir(run));
    await writeLinesDurably(this.partFile(run, part, 'results'), results, this.compress);
    await writeLinesDurably(this.partFile(run, part, 'failed'), failures, this.compress);
    // Finalized while this wrote: cleanup may have run before these files appeared, so remove them here.
    const refusal = await this.refusalIfFinalized(run);
    if (refusal) {
      await this.discardPart(run, part);
      throw refusal;
    }
  }

  async discardPart(run: string, part: string): Promise<void> {
    const files = (['results', 'failed'] as const).flatMap((k) => [this.partFile(run, part, k, false), this.partFile(run, part, k, true)]);
    await Promise.all([...files, this.validatorsPartFile(run, part)].map((f) => unlink(f).catch(() => undefined)));
  }

  /**
   * A part's bytes as this sink's output wants them. A part written by a
   * replica with the other `compress` setting (a config change rolling
   * through a fleet mid-run) is converted rather than missing.
   */
  private async partBytes(run: string, part: string, kind: Kind): Promise<Readable> {
    const own = this.partFile(run, part, kind);
    if (await exists(own)) return createReadStream(own);
    const other = this.partFile(run, part, kind, this.compress !== 'gzip');
    const size = await stat(other).then((st) => st.size, () => undefined);
    // Neither exists: createReadStream(own) fails with ENOENT naming the file we wanted.
    if (size === undefined) return createReadStream(own);
    // A gzipped part with no lines is an empty file, not a gzip stream: there is nothing to gunzip.
    if (size === 0) return createReadStream(other);
    // pipeline (not pipe): a read error reaches the reader of the converted stream instead of stalling it.
    return pipeline(createReadStream(other), this.compress === 'gzip' ? createGzip() : createGunzip(), () => undefined);
  }

  async readPart(run: string, part: string): Promise<ResultLine[]> {
    // This sink's own format first; a part written with the other compress setting (a config change mid-run) too.
    const own = this.compress === 'gzip';
    let lastErr: unknown;
    for (const gzipped of [own, !own]) {
      let bytes: Buffer;
      try {
        bytes = await readFile(this.partFile(run, part, 'results', gzipped));
      } catch (err) {
        lastErr = err;
        continue;
      }
      const text = (gzipped ? await gunzipAsync(bytes) : bytes).toString('utf8');
      return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as ResultLine);
    }
    throw lastErr;
  }

  // Conditional re-pulls (request.conditional): a part's validators are parts/<part>.validators.jsonl;
  // a complete run's are <dir>/.validators/<series>/<run>.pqv (validators-file.ts; a run name never
  // starts with a dot, so the directory cannot be a run's). The newest file of a series is its
  // validators: runs of a series are named <series>-<UTC stamp>, and names sort as their stamps.

  /** Open validators files by path (the newest of each series looked up). */
  private readonly validatorFiles = new Map<string, Promise<ValidatorsFile>>();
  /** Readers of files a newer one replaced, until they are closed. */
  private readonly retiredFiles = new Set<Promise<ValidatorsFile>>();

  private seriesDir(series: string): string {
    return path.join(this.dir, '.validators', series);
  }

  async writeValidators(run: string, part: string, entries: ValidatorEntry[]): Promise<void> {
    // Like writePart: a worker that stalled past finalize and cleanup leaves nothing in a finished run's directory.
    await this.refuseIfFinalized(run);
    await makeDirs(this.partsDir(run));
    await writeTextLinesDurably(this.validatorsPartFile(run, part), (function* () {
      for (const e of entries) yield validatorLine(e);
    })());
  }

  async publishValidators(run: string, series: string, parts: string[], fence?: FinalizeFence): Promise<void> {
    const dir = this.seriesDir(series);
    const target = path.join(dir, `${run}.pqv`);
    const newest = await newestValidators(dir);
    // A later run of the series published already (runs may complete out of order): its validators stay.
    if (newest !== undefined && newest > `${run}.pqv`) return;
    const sources = parts.map((p) => this.validatorsPartFile(run, p));
    // A run that wrote no validators (nothing answered with any) leaves its series' as they are.
    if (!(await Promise.all(sources.map((f) => access(f).then(() => true, () => false)))).some(Boolean)) return;
    await makeDirs(dir);
    const tmp = `${target}.tmp-${randomBytes(6).toString('hex')}`;
    try {
      if ((await buildValidatorsFile(tmp, sources)) === 0) return;
      await fence?.check();
      await rename(tmp, target);
      await syncDir(dir);
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
    // Older runs' files are no longer anyone's validators (a worker reading one keeps its open handle).
    for (const f of await readdir(dir)) {
      if (f.endsWith('.pqv') && f < `${run}.pqv`) await unlink(path.join(dir, f)).catch(() => undefined);
    }
  }

  async lookupValidators(series: string, ids: string[]): Promise<Map<string, ValidatorEntry>> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.lookupNewest(series, ids);
      } catch (err) {
        // The newest file was replaced (and removed) by a newer run's between listing and opening: look again.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 3) throw err;
      }
    }
  }

  private async lookupNewest(series: string, ids: string[]): Promise<Map<string, ValidatorEntry>> {
    const dir = this.seriesDir(series);
    const newest = await newestValidators(dir);
    if (newest === undefined) return new Map();
    const file = path.join(dir, newest);
    let reader = this.validatorFiles.get(file);
    if (!reader) {
      // A newer file replaces the series' older one: close that.
      // A lookup of another batch may still be reading the old one: it closes a minute later (or at close()).
      for (const [f, r] of this.validatorFiles) {
        if (path.dirname(f) === dir) {
          this.validatorFiles.delete(f);
          this.retiredFiles.add(r);
          setTimeout(() => {
            if (this.retiredFiles.delete(r)) void r.then((x) => x.close(), () => undefined);
          }, 60_000).unref();
        }
      }
      reader = ValidatorsFile.open(file);
      this.validatorFiles.set(file, reader);
      reader.catch(() => this.validatorFiles.delete(file));
    }
    return (await reader).lookup(ids);
  }

  async close(): Promise<void> {
    const readers = [...this.validatorFiles.values(), ...this.retiredFiles];
    this.validatorFiles.clear();
    this.retiredFiles.clear();
    await Promise.all(readers.map((r) => r.then((x) => x.close(), () => undefined)));
  }

  async finalize(run: string, parts: string[], summary: Summary, extraFailed: () => AsyncIterable<string[]>, fence?: FinalizeFence): Promise<void> {
    const runDir = path.join(this.dir, run);
    // This very run published already (its startedAt is the run's creation time): Redis lost the mark
    // that it was finalized, maybe after cleanup dropped the parts. The output is whole: keep it.
    if ((await this.refusalIfFinalized(run))?.published?.startedAt === summary.startedAt) {
      await fence?.check();
      return;
    }
    await makeDirs(runDir);
    // Each finalizer its own temp files: two of them (a lock that expired) never write the same file.
    const tmpSuffix = `.tmp-${randomBytes(6).toString('hex')}`;
    const written: [string, string][] = [];
    try {
      for (const kind of ['results', 'failed'] as const) {
        const target = path.join(runDir, this.outputName(kind));
        const tmp = `${target}${tmpSuffix}`;
        written.push([tmp, target]);
        const out = await openForWrite(tmp);
        try {
          let bytes = 0;
          for (const part of parts) {
            for await (const chunk of await this.partBytes(run, part, kind)) {
              await writeAll(out, chunk as Buffer);
              bytes += (chunk as Buffer).length;
            }
          }
          if (kind === 'failed') {
            const lines = new ChunkedLines(out, this.compress);
            for await (const chunk of extraFailed()) for (const line of chunk) await lines.add(`${line}\n`);
            bytes += await lines.flush();
          }
          // An empty file is not a gzip stream: give gunzip one empty member to read.
          if (bytes === 0 && this.compress === 'gzip') await writeAll(out, await gzipAsync(Buffer.alloc(0)));
          await out.sync();
        } finally {
          await out.close();
        }
      }
      const summaryTmp = path.join(runDir, `summary.json${tmpSuffix}`);
      written.push([summaryTmp, path.join(runDir, 'summary.json')]);
      await writeDurably(summaryTmp, `${JSON.stringify(summary, null, 2)}\n`);
      // Only the lock holder renames: a finalizer that lost its lock leaves the other's output alone.
      await fence?.check();
      // summary.json last: once it is there, the output is complete (writePart refuses the run from then on).
      for (const [tmp, target] of written) await rename(tmp, target);
      await syncDir(runDir);
    } finally {
      await Promise.all(written.map(([tmp]) => unlink(tmp).catch(() => undefined)));
    }
  }

  async cleanup(run: string): Promise<void> {
    await rm(this.partsDir(run), { recursive: true, force: true });
  }
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

/** The name of the newest validators file in a series directory, or undefined (none, or no directory). */
async function newestValidators(dir: string): Promise<string | undefined> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    // No directory: the series has no validators yet. Any other error is reported, not taken for none.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ValidatorsUnreadableError(dir, err);
  }
  let newest: string | undefined;
  for (const f of names) if (f.endsWith('.pqv') && (newest === undefined || f > newest)) newest = f;
  return newest;
}

async function makeDirs(dir: string): Promise<void> {
  const made = await mkdir(dir, { recursive: true, mode: DIR_MODE });
  // mkdir's mode passes through the umask; set it exactly on what was made.
  if (made !== undefined) {
    for (let d = dir; d.length >= made.length; d = path.dirname(d)) await chmod(d, DIR_MODE);
  }
}

async function openForWrite(file: string): Promise<FileHandle> {
  const fh = await open(file, 'w', FILE_MODE);
  await fh.chmod(FILE_MODE);
  return fh;
}

/**
 * Collects text into chunks of about WRITE_CHUNK bytes and writes each to `fh`
 * (gzipped: one gzip member per chunk, so memory stays bounded and members
 * concatenate into one valid stream). Returns the bytes written on flush.
 */
class ChunkedLines {
  private chunk: string[] = [];
  private size = 0;
  private written = 0;

  constructor(
    private readonly fh: FileHandle,
    private readonly compress: 'gzip' | undefined,
  ) {}

  async add(text: string): Promise<void> {
    this.chunk.push(text);
    this.size += text.length;
    if (this.size >= WRITE_CHUNK) await this.write();
  }

  async flush(): Promise<number> {
    if (this.chunk.length) await this.write();
    return this.written;
  }

  private async write(): Promise<void> {
    const plain = Buffer.from(this.chunk.join(''));
    this.chunk = [];
    this.size = 0;
    // zlib's async gzip runs on the thread pool: a worker's event loop (lock renewals, other IDs) keeps going.
    const data = this.compress === 'gzip' ? await gzipAsync(plain) : plain;
    await writeAll(this.fh, data);
    this.written += data.length;
  }
}

/** Writes one JSON line per value in bounded chunks, then fsyncs: memory stays bounded by the lines themselves. */
async function writeLinesDurably(file: string, values: (ResultLine | FailedLine)[], compress: 'gzip' | undefined): Promise<void> {
  const fh = await openForWrite(file);
  try {
    const lines = new ChunkedLines(fh, compress);
    for (const v of values) await lines.add(`${JSON.stringify(v)}\n`);
    await lines.flush();
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes lines (without their newline) in bounded chunks, then fsyncs (validators parts: never compressed). */
async function writeTextLinesDurably(file: string, lines: Iterable<string>): Promise<void> {
  const fh = await openForWrite(file);
  try {
    const out = new ChunkedLines(fh, undefined);
    for (const text of lines) await out.add(`${text}\n`);
    await out.flush();
    await fh.sync();
  } finally {
    await fh.close();
  }
}


async function writeDurably(file: string, text: string): Promise<void> {
  const fh = await openForWrite(file);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** fsync a directory, so the renames in it survive a crash before the run is marked finalized. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
