import { describe, expect, it } from 'vitest';
import { decodeBody } from '../src/jobs/decode-body.js';

// What a successful answer's body becomes: one ID's body never throws out of the decode.

const res = (body: Buffer, contentType?: string) => ({ status: 200, headers: {}, body, contentType });

describe('decodeBody', () => {
  it.each([
    ['JSON', '{"a":1}', 'application/json', { kind: 'result', data: { a: 1 } }],
    ['JSON without a type', '[1,2]', undefined, { kind: 'result', data: [1, 2] }],
    ['text', 'hello', 'text/plain', { kind: 'result', data: 'hello' }],
    ['not JSON without a type: text', '{oops', undefined, { kind: 'result', data: '{oops' }],
    ['says JSON, does not parse', '{oops', 'application/json', { kind: 'failed', error: 'invalid_json' }],
    ['empty', '', 'application/json', { kind: 'result', data: null }],
  ] as const)('%s', (_, body, type, want) => {
    const o = decodeBody('x', res(Buffer.from(body), type), 1);
    expect(o.kind).toBe(want.kind);
    if (o.kind === 'result') expect(o.line.data).toEqual((want as { data: unknown }).data);
    else expect(o.line.error).toBe((want as { error: string }).error);
  });

  it('a body longer than a JavaScript string can be fails the ID body_too_large instead of throwing', () => {
    // Never touched: Node refuses to decode it before reading a byte, so the memory is never used.
    const huge = Buffer.allocUnsafe(0x1fffffe8 + 1);
    for (const type of ['application/json', 'text/plain', undefined]) {
      expect(decodeBody('x', res(huge, type), 2)).toEqual({
        kind: 'failed',
        line: { id: 'x', status: 200, error: 'body_too_large', attempts: 2, message: `the body (${huge.length} bytes) is too large to decode as one string: lower request.maxBodyBytes` },
      });
    }
  });
});
