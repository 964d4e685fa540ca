import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, chmod, mkdir, open, readdir, rename, rm, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { type FailedLine, type FinalizeFence, type ResultLine, type Sink, type Summary } from './sink.js';
import type { ValidatorEntry } from './validators.js';
import { buildValidatorsFile, validatorLine, ValidatorsFile } from './validators-file.js';

/** Output is not world-readable: it may hold whatever the API returned. */
export const FILE_MODE = 0o640;
export const DIR_MODE = 0o750;
/** Lines are written in chunks of about this many bytes: a step's lines never join into one string past V8's limit. */
const WRITE_CHUNK = 4 * 1024 * 1024;

/**
 * The SPEC's file output: out/<run>/{results,failed}.jsonl and summary.json.
 * Parts live in out/<run>/parts/ until the run is finalized. Replicas on
 * several machines must share `dir` (a volume); otherwise use the Postgres sink.
 */
export class FileSink implements Sink {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  location(run: string): string {
    const dir = path.join(this.dir, run);
    return `${dir}/results.jsonl, failed.jsonl, summary.json`;
  }

  private partsDir(run: string): string {
    return path.join(this.dir, run, 'parts');
  }

  private partFile(run: string, part: string, kind: 'results' | 'failed' | 'validators'): string {
    return path.join(this.partsDir(run), `${part}.${kind}.jsonl`);
  }

  async writePart(run: string, part: string, results: ResultLine[], failures: FailedLine[]): Promise<void> {
    await makeDirs(this.partsDir(run));
    await writeLinesDurably(this.partFile(run, part, 'results'), results);
    await writeLinesDurably(this.partFile(run, part, 'failed'), failures);
  }

  async discardPart(run: string, part: string): Promise<void> {
    await Promise.all((['results', 'failed', 'validators'] as const).map((k) => unlink(this.partFile(run, part, k)).catch(() => undefined)));
  }

  // Conditional re-pulls (request.conditional): a part's validators are parts/<part>.validators.jsonl;
  // a complete run's are <dir>/.validators/<series>/<run>.pqv (validators-file.ts; a run name never
  // starts with a dot, so the directory cannot be a run's). The newest file of a series is its
  // validators: runs of a series are named <series>-<UTC stamp>, and names sort as their stamps.

  /** Open validators files by path (the newest of each series looked up). */
  private readonly validatorFiles = new Map<string, Promise<ValidatorsFile>>();

  private seriesDir(series: string): string {
    return path.join(this.dir, '.validators', series);
  }

  async writeValidators(run: string, part: string, entries: ValidatorEntry[]): Promise<void> {
    await makeDirs(this.partsDir(run));
    await writeTextLinesDurably(this.partFile(run, part, 'validators'), (function* () {
      for (const e of entries) yield validatorLine(e);
    })());
  }

  async publishValidators(run: string, series: string, parts: string[], fence?: FinalizeFence): Promise<void> {
    const dir = this.seriesDir(series);
    const target = path.join(dir, `${run}.pqv`);
    const newest = await newestValidators(dir);
    // A later run of the series published already (runs may complete out of order): its validators stay.
    if (newest !== undefined && newest > `${run}.pqv`) return;
    const sources = parts.map((p) => this.partFile(run, p, 'validators'));
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
    const dir = this.seriesDir(series);
    const newest = await newestValidators(dir);
    if (newest === undefined) return new Map();
    const file = path.join(dir, newest);
    let reader = this.validatorFiles.get(file);
    if (!reader) {
      // A newer file replaces the series' older one: close that.
      for (const [f, r] of this.validatorFiles) {
        if (path.dirname(f) === dir) {
          this.validatorFiles.delete(f);
          void r.then((x) => x.close(), () => undefined);
        }
      }
      reader = ValidatorsFile.open(file);
      this.validatorFiles.set(file, reader);
      reader.catch(() => this.validatorFiles.delete(file));
    }
    return (await reader).lookup(ids);
  }

  async close(): Promise<void> {
    const readers = [...this.validatorFiles.values()];
    this.validatorFiles.clear();
    await Promise.all(readers.map((r) => r.then((x) => x.close(), () => undefined)));
  }

  async finalize(run: string, parts: string[], summary: Summary, extraFailed: () => AsyncIterable<string[]>, fence?: FinalizeFence): Promise<void> {
    const runDir = path.join(this.dir, run);
    await makeDirs(runDir);
    // Each finalizer its own temp files: two of them (a lock that expired) never write the same file.
    const tmpSuffix = `.tmp-${randomBytes(6).toString('hex')}`;
    const written: [string, string][] = [];
    try {
      for (const kind of ['results', 'failed'] as const) {
        const target = path.join(runDir, `${kind}.jsonl`);
        const tmp = `${target}${tmpSuffix}`;
        written.push([tmp, target]);
        const out = await openForWrite(tmp);
        try {
          for (const part of parts) {
            for await (const chunk of createReadStream(this.partFile(run, part, kind))) await writeAll(out, chunk as Buffer);
          }
          if (kind === 'failed') {
            for await (const lines of extraFailed()) await writeAll(out, Buffer.from(`${lines.join('\n')}\n`));
          }
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

/** The name of the newest validators file in a series directory, or undefined. */
async function newestValidators(dir: string): Promise<string | undefined> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return undefined;
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

/** Writes one JSON line per value in bounded chunks, then fsyncs: memory stays bounded by the lines themselves. */
async function writeLinesDurably(file: string, values: (ResultLine | FailedLine)[]): Promise<void> {
  await writeTextLinesDurably(file, (function* () {
    for (const v of values) yield JSON.stringify(v);
  })());
}

/** Writes lines (without their newline) in bounded chunks, then fsyncs. */
async function writeTextLinesDurably(file: string, lines: Iterable<string>): Promise<void> {
  const fh = await openForWrite(file);
  try {
    let chunk: string[] = [];
    let size = 0;
    for (const text of lines) {
      const line = `${text}\n`;
      chunk.push(line);
      size += line.length;
      if (size >= WRITE_CHUNK) {
        await writeAll(fh, Buffer.from(chunk.join('')));
        chunk = [];
        size = 0;
      }
    }
    if (chunk.length) await writeAll(fh, Buffer.from(chunk.join('')));
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** FileHandle.write may write less than asked: go on until all is written. */
async function writeAll(fh: FileHandle, data: Buffer): Promise<void> {
  for (let at = 0; at < data.length; ) {
    const { bytesWritten } = await fh.write(data, at, data.length - at);
    at += bytesWritten;
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
