import type { FailedLine, ResultLine } from '../sinks/sink.js';
import type { FetchResult } from './fetch-id.js';

/**
 * The output line of a successful answer: JSON when it says JSON (or says
 * nothing and parses), else the text; a body that says JSON but does not
 * parse fails the ID as invalid_json, one too long for a string as body_too_large.
 */
export function decodeBody(id: string, res: FetchResult, attempts: number): { kind: 'result'; line: ResultLine } | { kind: 'failed'; line: FailedLine } {
  const body = res.body ?? Buffer.alloc(0);
  const type = (res.contentType ?? '').toLowerCase();
  const saysJson = /^application\/(?:[\w.+-]+\+)?json\b/.test(type) || type.includes('/json');
  const fetchedAt = new Date().toISOString();
  if (body.length === 0) return { kind: 'result', line: { id, status: res.status!, fetchedAt, data: null } };
  let text: string;
  try {
    text = body.toString('utf8');
  } catch (err) {
    // A body longer than V8's longest string (~512 M characters; possible only with a larger request.maxBodyBytes).
    if ((err as { code?: string }).code !== 'ERR_STRING_TOO_LONG') throw err;
    return { kind: 'failed', line: { id, status: res.status, error: 'body_too_large', message: `the body (${body.length} bytes) is too large to decode as one string: lower request.maxBodyBytes`, attempts } };
  }
  if (saysJson || type === '') {
    try {
      return { kind: 'result', line: { id, status: res.status!, fetchedAt, data: JSON.parse(text) as unknown } };
    } catch {
      if (saysJson) {
        return { kind: 'failed', line: { id, status: res.status, error: 'invalid_json', message: 'response says JSON but its body does not parse', attempts } };
      }
    }
  }
  return { kind: 'result', line: { id, status: res.status!, fetchedAt, data: text } };
}
