import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rm, stat, type FileHandle } from 'node:fs/promises';
import { fnv1a32 } from '../runs/run-store.js';
import type { ValidatorEntry } from './validators.js';
import { writeAll } from './write-all.js';

// The file sink's validators store (request.conditional): one hash-indexed
// file per complete run, so a worker finds an ID's validators with two
// positional reads and holds nothing of the file in memory (10M IDs would be
// hundreds of MB as a Map in every worker).
//
//   [bucket 0 lines][bucket 1 lines]…[index: (B + 1) float64 LE offsets][footer]
//   footer (32 bytes): "PQVALID1", B, index offset, entries (float64 LE each)
//
// A line is `{"id":…,"e":etag,"m":lastModified,"d":data}` (e, m, d when
// known), exactly as the workers wrote it beside their parts; an ID's bucket
// is fnv1a32(id) mod B, with B = entries / 8 (about 8 lines, a few hundred
// bytes, per bucket). Built in two passes with bounded memory: lines are
// spread over partition files by bucket range, then each partition is
// sorted by bucket in memory and appended.

const MAGIC = 'PQVALID1';
const FOOTER = 32;
const PER_BUCKET = 8;
/** A partition holds at most about this many entries and bytes in memory while the file is built. */
const PARTITION_ENTRIES = 50_000;
const PARTITION_BYTES = 32 * 1024 * 1024;
const FLUSH_BYTES = 256 * 1024;

/** A validators entry as one line of a part's validators file, and of the store. */
export function validatorLine(v: ValidatorEntry): string {
  const o: Record<string, unknown> = { id: v.id };
  if (v.etag !== undefined) o['e'] = v.etag;
  if (v.lastModified !== undefined) o['m'] = v.lastModified;
  if (v.hasData) o['d'] = v.data ?? null;
  return JSON.stringify(o);
}

function parseLine(line: string): ValidatorEntry {
  const o = JSON.parse(line) as { id: string; e?: string; m?: string; d?: unknown };
  const v: ValidatorEntry = { id: o.id };
  if (o.e !== undefined) v.etag = o.e;
  if (o.m !== undefined) v.lastModified = o.m;
  if ('d' in o) {
    v.data = o.d;
    v.hasData = true;
  }
  return v;
}

/** The id of a line without parsing the rest (its data may be large): the JSON string after `{"id":`. */
export function idOfLine(line: string): string {
  let i = 7;
  while (i < line.length && line.charCodeAt(i) !== 34) i += line.charCodeAt(i) === 92 ? 2 : 1;
  return JSON.parse(line.slice(6, i + 1)) as string;
}

async function* linesOf(file: string): AsyncGenerator<string> {
  let rest = '';
  for await (const chunk of createReadStream(file, { encoding: 'utf8', highWaterMark: 1024 * 1024 })) {
    const text = rest + (chunk as string);
    const parts = text.split('\n');
    rest = parts.pop()!;
    for (const p of parts) if (p !== '') yield p;
  }
  if (rest !== '') yield rest;
}

/** Appends text to a file through a buffer. */
class Appender {
  private buf: string[] = [];
  private size = 0;
  private fh: FileHandle | undefined;
  constructor(readonly file: string) {}
  async add(line: string): Promise<void> {
    this.buf.push(line, '\n');
    this.size += line.length + 1;
    if (this.size >= FLUSH_BYTES) await this.flush();
  }
  async flush(): Promise<void> {
    if (this.buf.length === 0) return;
    this.fh ??= await open(this.file, 'a', 0o600);
    await this.fh.write(this.buf.join(''));
    this.buf = [];
    this.size = 0;
  }
  async close(): Promise<void> {
    await this.flush();
    await this.fh?.close();
  }
}

/**
 * Builds a validators file at `target` (not atomically: write a temp name and rename it) from
 * the lines of `sources` (missing ones are skipped). Returns the number of entries; 0 writes nothing.
 */
export async function buildValidatorsFile(target: string, sources: string[]): Promise<number> {
  let entries = 0;
  let bytes = 0;
  const present: string[] = [];
  for (const file of sources) {
    let size: number;
    try {
      size = (await stat(file)).size;
    } catch {
      continue;
    }
    present.push(file);
    bytes += size;
    for await (const chunk of createReadStream(file)) for (const b of chunk as Buffer) if (b === 10) entries++;
  }
  if (entries === 0) return 0;
  const buckets = Math.max(1, Math.ceil(entries / PER_BUCKET));
  const partitions = Math.min(buckets, Math.max(1, Math.ceil(entries / PARTITION_ENTRIES), Math.ceil(bytes / PARTITION_BYTES)));
  const partitionOf = (bucket: number) => Math.floor((bucket * partitions) / buckets);
  const tmp = `${target}.p-${randomBytes(4).toString('hex')}`;
  const writers = Array.from({ length: partitions }, (_, p) => new Appender(`${tmp}.${p}`));
  try {
    for (const file of present) {
      for await (const line of linesOf(file)) await writers[partitionOf(fnv1a32(idOfLine(line)) % buckets)]!.add(line);
    }
    for (const w of writers) await w.close();
    const out = await open(target, 'w', 0o640);
    try {
      const offsets = new Float64Array(buckets + 1);
      let at = 0;
      let next = 0;
      for (let p = 0; p < partitions; p++) {
        let text: string;
        try {
          text = (await readWhole(writers[p]!.file)).toString('utf8');
        } catch {
          text = '';
        }
        const lines = text.split('\n').filter((l) => l !== '');
        const keyed = lines.map((line) => ({ line, bucket: fnv1a32(idOfLine(line)) % buckets }));
        keyed.sort((a, b) => a.bucket - b.bucket);
        for (const k of keyed) {
          while (next <= k.bucket) offsets[next++] = at;
          at += Buffer.byteLength(k.line, 'utf8') + 1;
        }
        if (keyed.length) await writeAll(out, Buffer.from(`${keyed.map((k) => k.line).join('\n')}\n`, 'utf8'));
        await rm(writers[p]!.file, { force: true });
      }
      while (next <= buckets) offsets[next++] = at;
      const index = Buffer.from(offsets.buffer);
      const footer = Buffer.alloc(FOOTER);
      footer.write(MAGIC, 0, 'latin1');
      footer.writeDoubleLE(buckets, 8);
      footer.writeDoubleLE(at, 16);
      footer.writeDoubleLE(entries, 24);
      await writeAll(out, Buffer.concat([index, footer]));
      await out.sync();
    } finally {
      await out.close();
    }
    return entries;
  } finally {
    await Promise.all(writers.map((w) => w.close().catch(() => undefined).then(() => rm(w.file, { force: true }))));
  }
}

async function readWhole(file: string): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}


async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, position + got);
    if (bytesRead === 0) throw new Error('validators file is shorter than its index says');
    got += bytesRead;
  }
  return buf;
}

/** Looks IDs up in one validators file: two positional reads per ID, nothing of the file kept but its footer. */
export class ValidatorsFile {
  private constructor(
    private readonly fh: FileHandle,
    private readonly buckets: number,
    private readonly indexAt: number,
    /** Entries in the file. */
    readonly entries: number,
  ) {}

  static async open(file: string): Promise<ValidatorsFile> {
    const fh = await open(file, 'r');
    try {
      const { size } = await fh.stat();
      if (size < FOOTER) throw new Error(`${file} is not a validators file`);
      const footer = await readAt(fh, size - FOOTER, FOOTER);
      if (footer.toString('latin1', 0, 8) !== MAGIC) throw new Error(`${file} is not a validators file`);
      return new ValidatorsFile(fh, footer.readDoubleLE(8), footer.readDoubleLE(16), footer.readDoubleLE(24));
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  /** The entries of `ids` that the file holds. */
  async lookup(ids: readonly string[]): Promise<Map<string, ValidatorEntry>> {
    const found = new Map<string, ValidatorEntry>();
    const byBucket = new Map<number, Set<string>>();
    for (const id of ids) {
      const b = fnv1a32(id) % this.buckets;
      let set = byBucket.get(b);
      if (!set) byBucket.set(b, (set = new Set()));
      set.add(id);
    }
    await Promise.all(
      [...byBucket].map(async ([b, wanted]) => {
        const range = await readAt(this.fh, this.indexAt + 8 * b, 16);
        const start = range.readDoubleLE(0);
        const end = range.readDoubleLE(8);
        if (end <= start) return;
        for (const line of (await readAt(this.fh, start, end - start)).toString('utf8').split('\n')) {
          if (line === '') continue;
          const id = idOfLine(line);
          if (wanted.has(id)) found.set(id, parseLine(line));
        }
      }),
    );
    return found;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
