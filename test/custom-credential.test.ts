import { createSecretKey, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { NormalizedOptions } from 'got';
import { buildCredentials } from '../src/auth/build-credentials.js';
import { CredentialRefusedError } from '../src/auth/credential-errors.js';
import type { OutgoingRequest } from '../src/auth/credential.js';
import { CustomSignerError } from '../src/auth/kinds/custom-credential.js';
import type { KindContext } from '../src/auth/kinds/kind-context.js';
import { parseConfig, type ConfigInput, type CustomSigner } from '../src/config.js';
import { ConfigError } from '../src/errors.js';
import { stripCredentialOffOrigin } from '../src/jobs/strip-credential-off-origin.js';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHttpClient } from '../src/jobs/http-client.js';
import { fetchId } from '../src/jobs/fetch-id.js';
import { outgoingRequest } from '../src/jobs/outgoing-request.js';
import { compileRequestTemplate } from '../src/ids/request-template.js';

// The custom signer and the oauth1 credential as pure request decorations (no Redis, no HTTP: their apply does no I/O).

const KEY = Buffer.alloc(32, 9);
const ctx = { key: KEY } as KindContext;
const request = { method: 'POST', url: 'http://api.test/items/1?x=1', headers: { accept: 'application/json', 'content-type': 'application/json' }, body: '{"id":"1"}' };
const build = (auth: ConfigInput['auth'], vars: Record<string, string> = {}) => buildCredentials({ ...ctx, config: parseConfig({ request: { url: 'http://api.test/items/{id}' }, auth }, { env: { vars } }) });

describe('auth type custom', () => {
  it('parseConfig keeps the function and class instances in a credential; ${VAR} still works in its strings', () => {
    const hmacKey: KeyObject = createSecretKey(Buffer.from('k'.repeat(32)));
    const sign: CustomSigner = () => undefined;
    const config = parseConfig({ request: { url: 'http://api.test/items/{id}' }, auth: { type: 'custom', sign, credentials: [{ name: 'one', key: hmacKey, raw: Buffer.from('x'), secret: '${S}' }] } }, { env: { vars: { S: 'from-env' } } });
    if (config.auth.type !== 'custom') throw new Error('not custom');
    expect(config.auth.sign).toBe(sign);
    const entry = config.credentials[0]!.entry!;
    expect(entry['key']).toBe(hmacKey);
    expect(Buffer.isBuffer(entry['raw'])).toBe(true);
    expect(entry['secret']).toBe('from-env');
  });

  it('the signer gets a copy: changed in place or a new request returned, both are sent; the input is untouched', async () => {
    const inPlace = build({ type: 'custom', sign: (r) => { r.headers['X-Sig'] = 'in-place'; r.url += '&sig=1'; }, credentials: [{ name: 'a', secret: 'alpha-secret' }] })[0]!;
    const returned = build({ type: 'custom', sign: async (r, c) => ({ ...r, method: 'PUT', headers: { ...r.headers, 'x-sig': `new-${String(c['secret'])}` }, body: 'signed' }), credentials: [{ secret: 'beta-secret' }] })[0]!;
    const a = await inPlace.apply(request);
    expect(a).toEqual({ ...request, url: `${request.url}&sig=1`, headers: { ...request.headers, 'x-sig': 'in-place' } });
    const b = await returned.apply(request);
    expect(b).toEqual({ method: 'PUT', url: request.url, headers: { ...request.headers, 'x-sig': 'new-beta-secret' }, body: 'signed' });
    expect(request.headers).toEqual({ accept: 'application/json', 'content-type': 'application/json' });
    expect(inPlace.headerNames).toEqual(['x-sig']);
    expect(inPlace.label).toBe('a');
    expect(returned.id).toMatch(/^fp-[0-9a-f]{12}$/);
    // Every string of the credential object is a secret, but its name.
    expect(inPlace.secrets).toEqual(['alpha-secret']);
  });

  it('headers the signer added are stripped on a cross-origin redirect, not on a same-origin one', async () => {
    const c = build({ type: 'custom', sign: (r) => ({ headers: { ...r.headers, 'x-api-signature': 'sig', 'x-api-time': '1' } }), credentials: [{ k: 'secret-k' }] })[0]!;
    const sent = await c.apply(request);
    const redirect = (url: string) => {
      const options = { url: new URL(url), headers: { ...sent.headers } } as unknown as NormalizedOptions;
      stripCredentialOffOrigin(options, 'http://api.test', c);
      return options.headers;
    };
    expect(redirect('http://api.test/elsewhere')).toHaveProperty('x-api-signature', 'sig');
    const off = redirect('http://other.test/x');
    expect(off).not.toHaveProperty('x-api-signature');
    expect(off).not.toHaveProperty('x-api-time');
    expect(off).toHaveProperty('accept');
  });

  it('a signer that throws: a CustomSignerError without the secret or a stack; CredentialRefusedError passes through (quarantine)', async () => {
    const thrower = build({ type: 'custom', sign: (_r, c) => { throw new Error(`bad key ${String(c['apiKey'])}\n    at sign (x.js:1)`); }, credentials: [{ name: 'z', apiKey: 'KEY-very-secret' }] })[0]!;
    const err = await Promise.resolve(thrower.apply(request)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CustomSignerError);
    expect((err as CustomSignerError).code).toBe('custom_signer_failed');
    expect((err as Error).message).toBe('the custom signer threw (bad key [redacted]) for credential z; the try is retried');
    const refused = build({ type: 'custom', sign: () => { throw new CredentialRefusedError('revoked', 'revoked', 'the API revoked this key'); }, credentials: [{}] })[0]!;
    await expect(refused.apply(request)).rejects.toBeInstanceOf(CredentialRefusedError);
    const garbage = build({ type: 'custom', sign: () => ({ url: 'not a url' }), credentials: [{}] })[0]!;
    await expect(garbage.apply(request)).rejects.toThrow(/returned no http\(s\) URL/);
  });

  it('credentials that differ only in a KeyObject have different ids', () => {
    const [a, b] = build({ type: 'custom', sign: () => undefined, credentials: [{ key: createSecretKey(Buffer.alloc(32, 1)) }, { key: createSecretKey(Buffer.alloc(32, 2)) }] });
    expect(a!.id).not.toBe(b!.id);
  });

  it('a JSON config cannot use it', () => {
    expect(() => parseConfig({ request: { url: 'http://api.test/items/{id}' }, auth: { type: 'custom', sign: 'x' } })).toThrow(/auth.sign: must be a function/);
  });
});

describe('a signer signs what is sent', () => {
  it("the URL it gets is the one on the wire (' in the query, as got sends it); headers it removes are not sent", async () => {
    const seen: { url: string; headers: http.IncomingHttpHeaders }[] = [];
    const server = http.createServer((req, res) => {
      seen.push({ url: req.url!, headers: req.headers });
      req.resume();
      req.on('end', () => res.end('{}'));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const config = parseConfig({
        request: { url: `${base}/items/{id}?note=it's&v=a|b`, method: 'POST', headers: { 'X-Fixed': 'fixed', 'X-Keep': 'kept' }, body: { id: '{id}' } },
        auth: { type: 'custom', sign: ((r) => { signed.push(r.url.slice(new URL(r.url).origin.length)); delete r.headers['x-fixed']; delete r.headers['content-type']; }) satisfies CustomSigner, credentials: [{ secret: 'sign-secret' }] },
      });
      const signed: string[] = [];
      const client = createHttpClient(config);
      const credential = buildCredentials({ ...ctx, config })[0]!;
      const rendered = compileRequestTemplate(config.request).render({ id: 'a b', columns: null });
      if (!rendered.ok) throw new Error(rendered.reason);
      const sent = await credential.apply(outgoingRequest(client, rendered.request));
      const res = await fetchId(client, { ...sent, maxBodyBytes: 1e6, credential });
      expect(res.status).toBe(200);
      expect(seen[0]!.url).toBe(signed[0]);
      expect(seen[0]!.url).toBe("/items/a%20b?note=it%27s&v=a|b");
      expect(seen[0]!.headers['x-keep']).toBe('kept');
      expect(seen[0]!.headers['x-fixed']).toBeUndefined();
      expect(seen[0]!.headers['content-type']).toBeUndefined();
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

describe('auth type oauth1', () => {
  const auth = (more: Record<string, unknown> = {}) =>
    ({ type: 'oauth1', signatureMethod: 'HMAC-SHA256', realm: '1234567', credentials: [{ consumerKey: 'ck', consumerSecret: '${CS}', token: 'tk', tokenSecret: '${TS}', name: 'ns-1' }], ...more }) as ConfigInput['auth'];

  it('every apply is a new signature: a fresh nonce, the Authorization header, nothing else changed', () => {
    const c = build(auth(), { CS: 'consumer&secret', TS: 'token secret' })[0]!;
    const a = c.apply(request) as OutgoingRequest;
    const b = c.apply(request) as OutgoingRequest;
    const nonce = (h: string) => /oauth_nonce="([^"]+)"/.exec(h)![1];
    expect(a.headers['authorization']).toMatch(/^OAuth realm="1234567", oauth_consumer_key="ck", oauth_nonce="[0-9a-f]{32}", oauth_signature_method="HMAC-SHA256", oauth_timestamp="\d+", oauth_token="tk", oauth_version="1.0", oauth_signature="[^"]+"$/);
    expect(nonce(a.headers['authorization']!)).not.toBe(nonce(b.headers['authorization']!));
    expect({ ...a, headers: { ...a.headers, authorization: undefined } }).toEqual({ ...request, headers: { ...request.headers, authorization: undefined } });
    expect(c.label).toBe('ns-1');
    expect(c.headerNames).toEqual(['authorization']);
    expect(c.secrets).toEqual(expect.arrayContaining(['consumer&secret', 'token secret', 'consumer%26secret&token%20secret']));
  });

  it('the id is a fingerprint of the consumer key and both secrets: "&" inside a secret makes no two alike', () => {
    const one = build(auth({ credentials: [{ consumerKey: 'ck', consumerSecret: 'a&', token: 't', tokenSecret: 'b' }] }))[0]!;
    const two = build(auth({ credentials: [{ consumerKey: 'ck', consumerSecret: 'a', token: 't', tokenSecret: '&b' }] }))[0]!;
    expect(one.id).not.toBe(two.id);
  });

  it('token and tokenSecret go together', () => {
    expect(() => build(auth({ credentials: [{ consumerKey: 'ck', consumerSecret: 'cs', token: 'tk' }] }))).toThrow(ConfigError);
    expect(() => build(auth({ credentials: [{ consumerKey: 'ck', consumerSecret: 'cs', tokenSecret: 'ts' }] }))).toThrow(/auth.credentials.0.token: required with tokenSecret/);
  });
});
