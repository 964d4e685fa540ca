import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, mkdir, open, readFile, rename, rm, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { type FailedLine, type FinalizeFence, type ResultLine, type Sink, type Summary } from './sink.js';

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

  private partFile(run: string, part: string, kind: 'results' | 'failed'): string {
    return path.join(this.partsDir(run), `${part}.${kind}.jsonl`);
  }

  async writePart(run: string, part: string, results: ResultLine[], failures: FailedLine[]): Promise<void> {
    await makeDirs(this.partsDir(run));
    await writeLinesDurably(this.partFile(run, part, 'results'), results);
    await writeLinesDurably(this.partFile(run, part, 'failed'), failures);
  }

  async discardPart(run: string, part: string): Promise<void> {
    await Promise.all((['results', 'failed'] as const).map((k) => unlink(this.partFile(run, part, k)).catch(() => undefined)));
  }

  async readPart(run: string, part: string): Promise<ResultLine[]> {
    const text = await readFile(this.partFile(run, part, 'results'), 'utf8');
    return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as ResultLine);
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
  const fh = await openForWrite(file);
  try {
    let chunk: string[] = [];
    let size = 0;
    for (const v of values) {
      const line = `${JSON.stringify(v)}\n`;
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
