import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { InputError } from '../errors.js';

/**
 * Streams IDs from a file or stdin ("-") in chunks, never holding the file:
 * strips a BOM, CRLF and surrounding whitespace, skips blank and `#` lines.
 */
export async function* readIds(source: string, chunkSize = 1000, stdin: Readable = process.stdin): AsyncGenerator<string[]> {
  const input = source === '-' ? stdin : await openFile(source);
  // Pulling chunks (not readline's line events) keeps backpressure: memory stays flat for any file size.
  const decoder = new StringDecoder('utf8');
  let rest = '';
  let chunk: string[] = [];
  let first = true;
  const take = (raw: string) => {
    let line = raw;
    if (first) {
      first = false;
      if (line.charCodeAt(0) === 0xfeff) line = line.slice(1);
    }
    line = line.trim();
    if (line !== '' && !line.startsWith('#')) chunk.push(line);
  };
  try {
    for await (const buf of input as AsyncIterable<Buffer | string>) {
      const text = rest + (typeof buf === 'string' ? buf : decoder.write(buf));
      let from = 0;
      let nl: number;
      while ((nl = text.indexOf('\n', from)) !== -1) {
        take(text.slice(from, nl));
        from = nl + 1;
      }
      rest = text.slice(from);
      if (chunk.length >= chunkSize) {
        yield chunk;
        chunk = [];
      }
    }
    rest += decoder.end();
  } catch (err) {
    throw new InputError(`cannot read IDs from ${source === '-' ? 'stdin' : source}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  if (rest !== '') take(rest);
  while (chunk.length > 0) {
    yield chunk.slice(0, chunkSize);
    chunk = chunk.slice(chunkSize);
  }
}

async function openFile(file: string): Promise<Readable> {
  const stream = createReadStream(file);
  await new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', (err: NodeJS.ErrnoException) => reject(fileError(file, err)));
  });
  return stream;
}

/** Counts newline bytes in a file without decoding it: sizes a run's dedupe buckets. */
export async function countLines(file: string): Promise<number> {
  let n = 0;
  try {
    for await (const buf of createReadStream(file) as AsyncIterable<Buffer>) {
      let i = -1;
      while ((i = buf.indexOf(10, i + 1)) !== -1) n++;
    }
  } catch (err) {
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
