import { InputError } from '../errors.js';
import { checkIdsSource, countLines, readIds, type IdChunk } from './read-ids.js';

/**
 * Where a run's IDs come from: an IDs file's path ("-": stdin), or IDs in
 * memory or streamed by the caller (an array, any iterable or async iterable
 * of strings, one ID each).
 */
export type IdsInput = string | Iterable<string> | AsyncIterable<string>;

/** How a run names its source in Redis and messages: the path, "stdin", or "iterable". */
export function idsSourceLabel(input: IdsInput): string {
  if (typeof input === 'string') return input === '-' ? 'stdin' : input;
  return 'iterable';
}

/** Fails early, before Redis is touched, when an IDs file cannot be read or the input is not IDs. */
export async function checkIdsInput(input: IdsInput): Promise<void> {
  if (typeof input === 'string') return checkIdsSource(input);
  if (input === null || typeof input !== 'object' || (!(Symbol.iterator in input) && !(Symbol.asyncIterator in input))) {
    throw new InputError('IDs must be a file path, "-" for stdin, an array, or an (async) iterable of strings');
  }
}

/** How many IDs to size a run's dedupe buckets for; undefined when unknown (a stream). */
export async function expectedIdsOf(input: IdsInput): Promise<number | undefined> {
  if (typeof input === 'string') return input === '-' ? undefined : countLines(input);
  if (Array.isArray(input)) return input.length;
  return undefined;
}

/**
 * IDs in chunks, as readIds gives a file's: from a path, or from an
 * iterable whose items are IDs (trimmed; empty ones skipped; `lines` are the
 * 1-based positions). An item that is not a string is refused, naming it.
 */
export async function* idChunks(input: IdsInput, chunkSize: number): AsyncGenerator<IdChunk> {
  if (typeof input === 'string') {
    yield* readIds(input, chunkSize);
    return;
  }
  let chunk: IdChunk = { ids: [], lines: [], problems: new Map() };
  let position = 0;
  for await (const item of input as AsyncIterable<unknown>) {
    position++;
    if (typeof item !== 'string') throw new InputError(`ID at position ${position} is ${item === null ? 'null' : typeof item}, not a string`);
    const id = item.trim();
    if (id === '') continue;
    chunk.ids.push(id);
    chunk.lines.push(position);
    if (chunk.ids.length >= chunkSize) {
      yield chunk;
      chunk = { ids: [], lines: [], problems: new Map() };
    }
  }
  if (chunk.ids.length > 0) yield chunk;
}
