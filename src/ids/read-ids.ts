import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { isUtf8 } from 'node:buffer';
import { InputError } from '../errors.js';

/** A line longer than this is not an ID: the file is refused (a 1 GB "line" must not fill memory). */
export const MAX_LINE_BYTES = 1024 * 1024;

/** IDs read from consecutive lines, with their 1-based line numbers. */
export interface IdChunk {
  ids: string[];
  lines: number[];
  /** Index in `ids` → why that line cannot be an ID as read (e.g. not valid UTF-8). */
  problems: Map<number, string>;
}

/**
 * Streams IDs from a file or stdin ("-") in chunks, never holding the file:
 * strips a BOM, CRLF and surrounding whitespace, skips blank and `#` lines.
 * A line that is not valid UTF-8 is passed on with a problem (it becomes an
 * invalid_id naming its line); a line over MAX_LINE_BYTES refuses the file.
 */
export async function* readIds(source: string, chunkSize = 1000, stdin: Readable = process.stdin): AsyncGenerator<IdChunk> {
  const input = source === '-' ? stdin : await openFile(source);
  const name = source === '-' ? 'stdin' : source;
  // Pulling chunks (not readline's line events) keeps backpressure: memory stays flat for any file size.
  let rest: Buffer = Buffer.alloc(0);
  let lineNo = 0;
  let chunk = newChunk();
  const take = (buf: Buffer, start: number, end: number) => {
    lineNo++;
    if (end > start && buf[end - 1] === 0x0d) end--;
    if (lineNo === 1 && end - start >= 3 && buf[start] === 0xef && buf[start + 1] === 0xbb && buf[start + 2] === 0xbf) start += 3;
    const text = buf.toString('utf8', start, end).trim();
    if (text === '' || text.startsWith('#')) return;
    if (text.includes('\uFFFD') && !isUtf8(buf.subarray(start, end))) chunk.problems.set(chunk.ids.length, 'is not valid UTF-8');
    chunk.ids.push(text);
    chunk.lines.push(lineNo);
  };
  try {
    for await (const piece of input as AsyncIterable<Buffer | string>) {
      const buf = rest.length > 0 ? Buffer.concat([rest, toBuffer(piece)]) : toBuffer(piece);
      let from = 0;
      let nl: number;
      while ((nl = buf.indexOf(0x0a, from)) !== -1) {
        if (nl - from > MAX_LINE_BYTES) throw tooLong(name, lineNo + 1);
        take(buf, from, nl);
        from = nl + 1;
      }
      rest = buf.subarray(from);
      if (rest.length > MAX_LINE_BYTES) throw tooLong(name, lineNo + 1);
      if (chunk.ids.length >= chunkSize) {
        yield chunk;
        chunk = newChunk();
      }
    }
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw new InputError(`cannot read IDs from ${name}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  if (rest.length > 0) take(rest, 0, rest.length);
  if (chunk.ids.length > 0) yield chunk;
}

function newChunk(): IdChunk {
  return { ids: [], lines: [], problems: new Map() };
}

function toBuffer(piece: Buffer | string): Buffer {
  return typeof piece === 'string' ? Buffer.from(piece, 'utf8') : piece;
}

function tooLong(name: string, line: number): InputError {
  return new InputError(`${name}: line ${line} is longer than ${MAX_LINE_BYTES} bytes; an IDs file has one ID per line`);
}

async function openFile(file: string): Promise<Readable> {
  const stream = createReadStream(file);
  await new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', (err: NodeJS.ErrnoException) => reject(fileError(file, err)));
  });
  return stream;
}

/**
 * Counts the lines of an IDs file without decoding it (sizes a run's dedupe
 * buckets) and refuses a line over MAX_LINE_BYTES before anything is enqueued.
 */
export async function countLines(file: string): Promise<number> {
  let n = 0;
  let lineStart = 0;
  let offset = 0;
  try {
    for await (const buf of createReadStream(file) as AsyncIterable<Buffer>) {
      let i = -1;
      while ((i = buf.indexOf(10, i + 1)) !== -1) {
        n++;
        if (offset + i - lineStart > MAX_LINE_BYTES) throw tooLong(file, n);
        lineStart = offset + i + 1;
      }
      offset += buf.length;
      if (offset - lineStart > MAX_LINE_BYTES) throw tooLong(file, n + 1);
    }
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw fileError(file, err as NodeJS.ErrnoException);
  }
  return n + 1;
}

function fileError(file: string, err: NodeJS.ErrnoException): InputError {
  const why = err.code === 'ENOENT' ? `IDs file not found: ${file}` : err.code === 'EISDIR' ? `IDs file is a directory: ${file}` : `cannot read IDs file ${file}: ${err.code ?? err.message}`;
  return new InputError(why, { cause: err });
}

/** Fails early, before Redis is touched, when an IDs file cannot be read. */
export async function checkIdsSource(source: string): Promise<void> {
  if (source === '-') return;
  const stream = await openFile(source);
  stream.destroy();
}
