import { createHmac } from 'node:crypto';
import OAuth from 'oauth-1.0a';
import { describe, expect, it } from 'vitest';
import {
  authorizationHeader, baseStringUri, encodedPairsOf, formDecodeBytes, percentEncode, protocolParameters, signatureBaseString, signatureOf, signingKey, signOAuth1,
} from '../src/policy/oauth1-signature.js';

// RFC 5849 signing as pure functions: the RFC's own examples, then IDs where clients usually get the encoding wrong,
// checked against an independent implementation (the oauth-1.0a package).

describe('percent-encoding (RFC 5849 §3.6)', () => {
  it.each([
    ['abcXYZ019-._~', 'abcXYZ019-._~'],
    ['a b', 'a%20b'],
    ['a+b', 'a%2Bb'],
    ["*'()!", '%2A%27%28%29%21'],
    ['%', '%25'],
    ['%20', '%2520'],
    ['a/b?c=d&e', 'a%2Fb%3Fc%3Dd%26e'],
    ['ü', '%C3%BC'],
    ['日本', '%E6%97%A5%E6%9C%AC'],
    ['😀', '%F0%9F%98%80'],
    ['\ud800', '%EF%BF%BD'],
  ])('%j → %s', (text, encoded) => {
    expect(percentEncode(text)).toBe(encoded);
  });

  it.each([
    ['a+b', 'a b'],
    ['a%2Bb', 'a+b'],
    ['%C3%BC', 'ü'],
    ['%c3%bc', 'ü'],
    ['100%', '100%'],
    ['%zz%4', '%zz%4'],
    ['ü', 'ü'],
  ])('form component %j decodes to %j', (component, text) => {
    expect(formDecodeBytes(component).toString('utf8')).toBe(text);
  });

  it('bytes that are not UTF-8 survive decoding and re-encoding as they were', () => {
    expect(encodedPairsOf('k=%FF%FE')).toEqual([['k', '%FF%FE']]);
  });
});

describe('the signature base string (§3.4.1)', () => {
  it('base string URI: scheme and host lower case, default port dropped, no query or fragment', () => {
    expect(baseStringUri(new URL('HTTP://EXAMPLE.COM:80/r%20v/X?id=123'))).toBe('http://example.com/r%20v/X');
    expect(baseStringUri(new URL('https://www.example.net:8080/?q=1#f'))).toBe('https://www.example.net:8080/');
    expect(baseStringUri(new URL('https://example.com:443'))).toBe('https://example.com/');
  });

  it("RFC 5849 §3.4.1.1's example: query, form body and protocol parameters, duplicates kept, sorted", () => {
    const request = {
      method: 'post',
      url: 'http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'c2&a3=2+q',
    };
    const oauth: [string, string][] = [
      ['oauth_consumer_key', '9djdj82h48djs9d2'], ['oauth_token', 'kkk9d7dh3k39sjv7'], ['oauth_signature_method', 'HMAC-SHA1'], ['oauth_timestamp', '137131201'], ['oauth_nonce', '7d8f3e4a'],
    ];
    expect(signatureBaseString(request, oauth)).toBe(
      'POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7',
    );
    // A JSON body is not signed; nor is a form body sent as another type.
    expect(signatureBaseString({ ...request, headers: { 'content-type': 'application/json' } }, oauth)).not.toContain('c2%3D');
    expect(signatureBaseString({ ...request, headers: { 'content-type': 'Application/X-WWW-Form-URLEncoded; charset=utf-8' } }, oauth)).toContain('c2%3D');
  });

  it("RFC 5849 §1.2's example request: HMAC-SHA1 signature MdpQcU8iPSUjWoN/UDMsK2sui9I=", () => {
    const oauth: [string, string][] = [
      ['oauth_consumer_key', 'dpf43f3p2l4k3l03'], ['oauth_token', 'nnch734d00sl2jdk'], ['oauth_signature_method', 'HMAC-SHA1'], ['oauth_timestamp', '137131202'], ['oauth_nonce', 'chapoH'],
    ];
    const base = signatureBaseString({ method: 'GET', url: 'http://photos.example.net/photos?file=vacation.jpg&size=original' }, oauth);
    expect(base).toBe('GET&http%3A%2F%2Fphotos.example.net%2Fphotos&file%3Dvacation.jpg%26oauth_consumer_key%3Ddpf43f3p2l4k3l03%26oauth_nonce%3DchapoH%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131202%26oauth_token%3Dnnch734d00sl2jdk%26size%3Doriginal');
    const key = signingKey({ consumerSecret: 'kd94hf93k423kf44', tokenSecret: 'pfkkdhi9sl3r4s00' });
    expect(key).toBe('kd94hf93k423kf44&pfkkdhi9sl3r4s00');
    expect(signatureOf('HMAC-SHA1', base, key)).toBe('MdpQcU8iPSUjWoN/UDMsK2sui9I=');
    expect(authorizationHeader([...oauth, ['oauth_signature', 'MdpQcU8iPSUjWoN/UDMsK2sui9I=']], 'Photos')).toBe(
      'OAuth realm="Photos", oauth_consumer_key="dpf43f3p2l4k3l03", oauth_token="nnch734d00sl2jdk", oauth_signature_method="HMAC-SHA1", oauth_timestamp="137131202", oauth_nonce="chapoH", oauth_signature="MdpQcU8iPSUjWoN%2FUDMsK2sui9I%3D"',
    );
  });

  it('PLAINTEXT is the encoded signing key (§3.4.4); HMAC-SHA256 a base64 HMAC-SHA256; a realm is a quoted-string', () => {
    const keys = { consumerKey: 'ck', consumerSecret: 'c&s', token: 'tk', tokenSecret: 't s' };
    const plain = signOAuth1({ method: 'GET', url: 'http://a.test/x' }, keys, { method: 'PLAINTEXT', nonce: 'n', timestamp: 1 });
    expect(plain.signature).toBe('c%26s&t%20s');
    expect(plain.authorization).toContain('oauth_signature="c%2526s%26t%2520s"');
    const sha = signOAuth1({ method: 'GET', url: 'http://a.test/x' }, keys, { method: 'HMAC-SHA256', nonce: 'n', timestamp: 1, realm: 'a "b"' });
    const base = signatureBaseString({ method: 'GET', url: 'http://a.test/x' }, protocolParameters(keys, 'HMAC-SHA256', { nonce: 'n', timestamp: 1 }));
    expect(sha.signature).toBe(createHmac('sha256', 'c%26s&t%20s').update(base).digest('base64'));
    expect(sha.authorization).toMatch(/^OAuth realm="a \\"b\\"", oauth_consumer_key="ck", /);
    // Two-legged: no token, the key ends in "&".
    expect(signOAuth1({ method: 'GET', url: 'http://a.test/x' }, { consumerKey: 'ck', consumerSecret: 'cs' }, { method: 'PLAINTEXT', nonce: 'n', timestamp: 1 }).signature).toBe('cs&');
  });
});

const STRESS_IDS = ['a b', 'a+b', 'a*b', "it's", '(x)', 'x)', '~tilde', 'bang!', 'über', 'ü', '100%', '%20', 'a/b', '日本', 'a&b=c', 'plain-1'];

describe('IDs that stress the encoding, against the oauth-1.0a package', () => {
  it.each(STRESS_IDS)('%j in the path and the query: same base string and signature', (id) => {
    const keys = { consumerKey: 'key one', consumerSecret: "s'e*c+r(e)t", token: 'tok~en', tokenSecret: 'tök!' };
    // As the request template builds it, and as the HTTP client (WHATWG URL) puts it on the wire.
    const url = `http://API.Example.test:80/items/${encodeURIComponent(id)}?q=${encodeURIComponent(id)}&fixed=1`;
    const sent = new URL(url).href;
    for (const method of ['HMAC-SHA1', 'HMAC-SHA256'] as const) {
      const fresh = { nonce: 'abc123', timestamp: 1_700_000_000 };
      const ours = signOAuth1({ method: 'GET', url }, keys, { method, ...fresh });
      const lib = new OAuth({
        consumer: { key: keys.consumerKey, secret: keys.consumerSecret },
        signature_method: method,
        hash_function: (base, key) => createHmac(method === 'HMAC-SHA1' ? 'sha1' : 'sha256', key).update(base).digest('base64'),
      });
      const data = { oauth_consumer_key: keys.consumerKey, oauth_nonce: fresh.nonce, oauth_signature_method: method, oauth_timestamp: fresh.timestamp, oauth_token: keys.token, oauth_version: '1.0' };
      const expected = lib.getSignature({ url: sent, method: 'GET' }, keys.tokenSecret, data as unknown as OAuth.Data);
      expect(ours.signature).toBe(expected);
    }
  });
});
