import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { fingerprint } from '../src/auth/credential.js';
import { createCredential } from '../src/auth/kinds/static-credential.js';

/** A deployment's fingerprint key (credential-key.ts keeps one per queue in Redis). */
const KEY = Buffer.alloc(32, 7);
const base = { method: 'GET', url: 'http://api.test/items/1?x=1', headers: { accept: 'application/json' } };

describe('static credentials', () => {
  it('header with a scheme, a custom name, or the raw token', () => {
    expect(createCredential({ kind: 'header', secret: 's3cret' }, { type: 'header', header: 'Authorization', scheme: 'Bearer' }, KEY).apply(base).headers)
      .toEqual({ accept: 'application/json', authorization: 'Bearer s3cret' });
    expect(createCredential({ kind: 'header', secret: 's3cret' }, { type: 'header', header: 'Authorization', scheme: 'token' }, KEY).apply(base).headers['authorization'])
      .toBe('token s3cret');
    expect(createCredential({ kind: 'header', secret: 's3cret' }, { type: 'header', header: 'X-API-Key', scheme: '' }, KEY).apply(base).headers['x-api-key'])
      .toBe('s3cret');
  });

  it('query parameter appended without re-encoding the URL', () => {
    const c = createCredential({ kind: 'query', secret: 'a b&c' }, { type: 'query', param: 'api_key' }, KEY);
    expect(c.apply({ method: 'GET', url: 'http://api.test/items/x%20y?x=1#frag', headers: {} }).url).toBe('http://api.test/items/x%20y?x=1&api_key=a%20b%26c');
    expect(c.apply({ method: 'GET', url: 'http://api.test/items/1', headers: {} }).url).toBe('http://api.test/items/1?api_key=a%20b%26c');
  });

  it('basic', () => {
    const c = createCredential({ kind: 'basic', user: 'ann', secret: 'pw:1' }, { type: 'basic' }, KEY);
    expect(c.apply(base).headers['authorization']).toBe(`Basic ${Buffer.from('ann:pw:1').toString('base64')}`);
  });

  it('is named by name or fingerprint, never by the secret', () => {
    const named = createCredential({ kind: 'header', secret: 'tok-123456', name: 'ci-bot' }, { type: 'header' }, KEY);
    const anon = createCredential({ kind: 'header', secret: 'tok-123456' }, { type: 'header' }, KEY);
    expect(named.label).toBe('ci-bot');
    // Fleet state is keyed by the fingerprint: a new token under the same name is a new credential.
    expect(named.id).toBe(`fp-${fingerprint('tok-123456', '', KEY)}`);
    expect(anon.label).toBe(anon.id);
    expect(anon.id).not.toContain('tok-123456');
  });

  it('the fingerprint is an HMAC under the deployment\'s key: no offline guess from an unsalted hash, the same id for one key', () => {
    const keyA = Buffer.alloc(32, 1);
    const keyB = Buffer.alloc(32, 2);
    const id = fingerprint('hunter2', 'ann', keyA);
    expect(fingerprint('hunter2', 'ann', keyA)).toBe(id);
    expect(fingerprint('hunter2', 'ann', keyB)).not.toBe(id);
    // What a guesser could compute without the key: SHA-256 of user, NUL, password.
    expect(id).not.toBe(createHash('sha256').update('ann').update('\0').update('hunter2').digest('hex').slice(0, 12));
    expect(id).toBe(createHmac('sha256', keyA).update('ann').update('\0').update('hunter2').digest('hex').slice(0, 12));
  });
});
