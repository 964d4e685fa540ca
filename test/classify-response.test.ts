import { describe, expect, it } from 'vitest';
import { classifyResponse, type Exchange } from '../src/jobs/classify-response.js';

const now = Date.parse('2026-01-01T00:00:00Z');

describe('classifyResponse', () => {
  const table: [string, Exchange, Record<string, unknown>][] = [
    ['200', { status: 200 }, { action: 'success' }],
    ['204', { status: 204 }, { action: 'success' }],
    ['404 ends the ID', { status: 404 }, { action: 'fail', error: 'not_found' }],
    ['410 ends the ID', { status: 410 }, { action: 'fail', error: 'not_found' }],
    ['400', { status: 400 }, { action: 'fail', error: 'client_error' }],
    ['422', { status: 422 }, { action: 'fail', error: 'client_error' }],
    ['304 not followed', { status: 304 }, { action: 'fail', error: 'client_error' }],
    ['500 retries', { status: 500 }, { action: 'retry', error: 'server_error', countsAttempt: true, switchCredential: false }],
    ['503 with Retry-After seconds', { status: 503, headers: { 'retry-after': '7' } }, { action: 'retry', error: 'server_error', waitMs: 7000 }],
    ['408', { status: 408 }, { action: 'retry', error: 'timeout' }],
    ['429 waits, spends no attempt', { status: 429, headers: { 'retry-after': '3' } }, { action: 'retry', waitMs: 3000, countsAttempt: false, switchCredential: true }],
    ['429 with HTTP-date', { status: 429, headers: { 'retry-after': 'Thu, 01 Jan 2026 00:00:10 GMT' } }, { action: 'retry', waitMs: 10_000, countsAttempt: false }],
    ['429 bare', { status: 429 }, { action: 'retry', waitMs: undefined, countsAttempt: false }],
    ['401 tries another credential', { status: 401 }, { action: 'retry', error: 'unauthorized', switchCredential: true }],
    ['403 tries another credential', { status: 403 }, { action: 'retry', error: 'forbidden', switchCredential: true }],
    ['timeout', { status: null, errorCode: 'ETIMEDOUT' }, { action: 'retry', error: 'timeout', countsAttempt: true }],
    ['connection reset', { status: null, errorCode: 'ECONNRESET' }, { action: 'retry', error: 'network' }],
    ['connection refused', { status: null, errorCode: 'ECONNREFUSED' }, { action: 'retry', error: 'network' }],
    ['redirect loop', { status: null, errorCode: 'ERR_TOO_MANY_REDIRECTS' }, { action: 'fail', error: 'client_error' }],
    ['body over the cap', { status: null, tooLarge: true }, { action: 'fail', error: 'body_too_large' }],
  ];
  it.each(table)('%s', (_, exchange, expected) => {
    expect(classifyResponse(exchange, now)).toMatchObject(expected);
  });
});
