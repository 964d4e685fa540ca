import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rm, stat, type FileHandle } from 'node:fs/promises';
import pLimit from 'p-limit';
import { PullqError } from '../errors.js';
import { fnv1a32 } from '../runs/run-store.js';
import type { ValidatorEntry } from './validators.js';
import { writeAll } from './write-all.js';

// The file sink's validators store (request.conditional): one hash-indexed
// file per complete run, so a worker finds an ID's validators with a few
// positional reads and holds nothing of the file in memory (10M IDs would be
// hundreds of MB as a Map in every worker).
//
//   [data][bucket 0 heads][bucket 1 heads]…[index: (B + 1) float64 LE offsets][footer]
//   footer (32 bytes): "PQVALID2", B, index offset, entries (float64 LE each)
//
// A head is `{"id":…,"e":etag,"m":lastModified,"o":offset,"n":length}` (e, m
// when known; o and n when the entry has data: where its JSON text lies in the
// data region). An ID's bucket is fnv1a32(id) mod B, with B = entries / 8, so
// a lookup reads its bucket's heads (about 8, a few hundred bytes) and then the
// data of the entry it wants only: large carried bodies (output.carryUnchanged)
// are never read for their bucket neighbours. Built in two passes with bounded
// memory: data is written out as the workers' lines are read, and their heads
// spread over partition files by bucket range; then each partition is sorted
// by bucket in memory and appended.
//
// "PQVALID1" files (no data region; each head holds its data as "d") are still
// read: a series keeps one until its next run completes.

const MAGIC = 'PQVALID2';
const MAGIC_V1 = 'PQVALID1';
const FOOTER = 32;
const PER_BUCKET = 8;
/** A partition holds at most about this many entries and bytes in memory while the file is built. */
const PARTITION_ENTRIES = 50_000;
const PARTITION_BYTES = 32 * 1024 * 1024;
const FLUSH_BYTES = 256 * 1024;
/** Buckets one lookup reads at a time: what it holds in flight is this many buckets' heads and one entry's data each. */
const LOOKUP_CONCURRENCY = 8;

/**
 * A validators store that cannot be read: a file or directory that is there but unreadable or
 * corrupt. The step that looked it up fails (and is retried, then stops the run naming this)
 * rather than pulling every ID without validators unnoticed.
 */
export class ValidatorsUnreadableError extends PullqError {
  constructor(what: string, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super('validators_unreadable', `cannot read the validators in ${what} (${reason}): fix or delete it; without it the next run of the series is pulled without validators and keeps new ones`, { cause });
  }
}

/** A validators entry as one line of a part's validators file, and of the store. */
export function validatorLine(v: ValidatorEntry): string {
  const o: Record<string, unknown> = { id: v.id };
  if (v.etag !== undefined) o['e'] = v.etag;
  if (v.lastModified !== undefined) o['m'] = v.lastModified;
  if (v.hasData) o['d'] = v.data ?? null;
  return JSON.stringify(o);
}

/** A stored head: the entry's validators, and where its data is (v2) or the data itself (v1, and the workers' lines). */
interface Head {
  id: string;
  e?: string;
  m?: string;
  /** Offset and byte length of the entry's data (JSON text) in the data region. */
  o?: number;
  n?: number;
  d?: unknown;
}

function entryOf(h: Head): ValidatorEntry {
  const v: ValidatorEntry = { id: h.id };
  if (h.e !== undefined) v.etag = h.e;
  if (h.m !== undefined) v.lastModified = h.m;
  if ('d' in h) {
    v.data = h.d;
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
  /** Whether any line was added (a partition no line went to has no file). */
  wrote = false;
  constructor(readonly file: string) {}
  async add(line: string): Promise<void> {
    this.wrote = true;
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
    this.fh = undefined;
  }
}

/** Writes bytes at the end of an open file through a buffer, counting where it is. */
class DataWriter {
  private buf: Buffer[] = [];
  private size = 0;
  /** Bytes written so far, buffered ones included: the offset of the next write. */
  at = 0;
  constructor(private readonly fh: FileHandle) {}
  async add(bytes: Buffer): Promise<void> {
    this.buf.push(bytes);
    this.size += bytes.length;
    this.at += bytes.length;
    if (this.size >= FLUSH_BYTES) await this.flush();
  }
  async flush(): Promise<void> {
    if (this.size === 0) return;
    const bytes = this.buf.length === 1 ? this.buf[0]! : Buffer.concat(this.buf);
    this.buf = [];
    this.size = 0;
    await writeAll(this.fh, bytes);
  }
}

const isMissing = (err: unknown) => (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';

/**
 * Builds a validators file at `target` (not atomically: write a temp name and rename it) from
 * the lines of `sources` (missing ones are skipped: a part without validators has none).
 * Returns the number of entries; 0 writes nothing. A source that is there but cannot be read
 * throws ValidatorsUnreadableError naming it: its entries are never left out unnoticed.
 */
export async function buildValidatorsFile(target: string, sources: string[]): Promise<number> {
  let entries = 0;
  let bytes = 0;
  const present: string[] = [];
  for (const file of sources) {
    try {
      bytes += (await stat(file)).size;
      let n = 0;
      for await (const chunk of createReadStream(file)) for (const b of chunk as Buffer) if (b === 10) n++;
      entries += n;
    } catch (err) {
      if (isMissing(err)) continue;
      throw new ValidatorsUnreadableError(file, err);
    }
    present.push(file);
  }
  if (entries === 0) return 0;
  const buckets = Math.max(1, Math.ceil(entries / PER_BUCKET));
  const partitions = Math.min(buckets, Math.max(1, Math.ceil(entries / PARTITION_ENTRIES), Math.ceil(bytes / PARTITION_BYTES)));
  const partitionOf = (bucket: number) => Math.floor((bucket * partitions) / buckets);
  const tmp = `${target}.p-${randomBytes(4).toString('hex')}`;
  const writers = Array.from({ length: partitions }, (_, p) => new Appender(`${tmp}.${p}`));
  try {
    const out = await open(target, 'w', 0o640);
    try {
      // Pass 1: each entry's data to the data region, its head to the partition of its bucket.
      const data = new DataWriter(out);
      for (const file of present) {
        try {
          for await (const line of linesOf(file)) {
            const h = JSON.parse(line) as Head;
            const head: Head = { id: h.id };
            if (h.e !== undefined) head.e = h.e;
            if (h.m !== undefined) head.m = h.m;
            if ('d' in h) {
              const text = Buffer.from(JSON.stringify(h.d ?? null), 'utf8');
              head.o = data.at;
              head.n = text.length;
              await writing(() => data.add(text));
            }
            await writing(() => writers[partitionOf(fnv1a32(h.id) % buckets)]!.add(JSON.stringify(head)));
          }
        } catch (err) {
          // Only a failure to read or parse the source names it; a failed write (a full disk) goes through as it is.
          if (err instanceof WriteFailure) throw err.cause;
          throw new ValidatorsUnreadableError(file, err);
        }
      }
      await data.flush();
      for (const w of writers) await w.close();
      // Pass 2: each partition's heads sorted by bucket, then the index.
      const offsets = new Float64Array(buckets + 1);
      let at = data.at;
      let next = 0;
      for (const w of writers) {
        if (!w.wrote) continue;
        let text: string;
        try {
          text = (await readWhole(w.file)).toString('utf8');
        } catch (err) {
          throw new ValidatorsUnreadableError(w.file, err);
        }
        const keyed = text.split('\n').filter((l) => l !== '').map((line) => ({ line, bucket: fnv1a32(idOfLine(line)) % buckets }));
        keyed.sort((a, b) => a.bucket - b.bucket);
        for (const k of keyed) {
          while (next <= k.bucket) offsets[next++] = at;
          at += Buffer.byteLength(k.line, 'utf8') + 1;
        }
        if (keyed.length) await writeAll(out, Buffer.from(`${keyed.map((k) => k.line).join('\n')}\n`, 'utf8'));
        await rm(w.file, { force: true });
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
    if (bytesRead === 0) throw new Error('the file is shorter than its index says');
    got += bytesRead;
  }
  return buf;
}

/**
 * Looks IDs up in one validators file: per ID, its bucket's index entry and heads, then its
 * data only; nothing of the file kept but its footer. What one lookup reads is its IDs' heads
 * and data, LOOKUP_CONCURRENCY buckets at a time.
 */
export class ValidatorsFile {
  private constructor(
    private readonly file: string,
    private readonly fh: FileHandle,
    private readonly buckets: number,
    private readonly indexAt: number,
    /** Entries in the file. */
    readonly entries: number,
  ) {}

  /** Bytes the lookups read so far (what a lookup costs: tests and the bench read it). */
  bytesRead = 0;

  /** Opens a validators file; one that is there but is not one (or cannot be read) throws ValidatorsUnreadableError. */
  static async open(file: string): Promise<ValidatorsFile> {
    // Missing (a newer run of the series replaced it just now) throws as it is: the caller looks again.
    const fh = await open(file, 'r');
    try {
      const { size } = await fh.stat();
      if (size < FOOTER) throw new Error('not a validators file: too short');
      const footer = await readAt(fh, size - FOOTER, FOOTER);
      const magic = footer.toString('latin1', 0, 8);
      if (magic !== MAGIC && magic !== MAGIC_V1) throw new Error('not a validators file: no footer');
      return new ValidatorsFile(file, fh, footer.readDoubleLE(8), footer.readDoubleLE(16), footer.readDoubleLE(24));
    } catch (err) {
      await fh.close();
      throw new ValidatorsUnreadableError(file, err);
    }
  }

  private async read(position: number, length: number): Promise<Buffer> {
    this.bytesRead += length;
    return readAt(this.fh, position, length);
  }

  /** The entries of `ids` that the file holds. Throws ValidatorsUnreadableError when the file is corrupt. */
  async lookup(ids: readonly string[]): Promise<Map<string, ValidatorEntry>> {
    const found = new Map<string, ValidatorEntry>();
    const byBucket = new Map<number, Set<string>>();
    for (const id of ids) {
      const b = fnv1a32(id) % this.buckets;
      let set = byBucket.get(b);
      if (!set) byBucket.set(b, (set = new Set()));
      set.add(id);
    }
    const limit = pLimit(LOOKUP_CONCURRENCY);
    try {
      await Promise.all([...byBucket].map(([b, wanted]) => limit(() => this.lookupBucket(b, wanted, found))));
    } catch (err) {
      throw new ValidatorsUnreadableError(this.file, err);
    }
    return found;
  }

  private async lookupBucket(bucket: number, wanted: Set<string>, found: Map<string, ValidatorEntry>): Promise<void> {
    const range = await this.read(this.indexAt + 8 * bucket, 16);
    const start = range.readDoubleLE(0);
    const end = range.readDoubleLE(8);
    if (end <= start) return;
    for (const line of (await this.read(start, end - start)).toString('utf8').split('\n')) {
      if (line === '') continue;
      if (!wanted.has(idOfLine(line))) continue;
      const head = JSON.parse(line) as Head;
      if (head.o !== undefined && head.n !== undefined) head.d = JSON.parse((await this.read(head.o, head.n)).toString('utf8'));
      found.set(head.id, entryOf(head));
    }
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

/** A write of the build that failed: told apart from a source that cannot be read. */
class WriteFailure extends Error {
  constructor(cause: unknown) {
    super('write failed', { cause });
  }
}

async function writing(write: () => Promise<void>): Promise<void> {
  try {
    await write();
  } catch (err) {
    throw new WriteFailure(err);
  }
}
