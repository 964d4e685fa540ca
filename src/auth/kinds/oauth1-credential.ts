import { randomUUID } from 'node:crypto';
import type { Config, CredentialConfig } from '../../config.js';
import { percentEncode, signingKey, signOAuth1 } from '../../policy/oauth1-signature.js';
import { credentialId, type Credential, type OutgoingRequest } from '../credential.js';

export type OAuth1Auth = Extract<Config['auth'], { type: 'oauth1' }>;

/** A clock for the timestamps (seconds): tests and the bench may set it. */
export type Clock = () => number;

/**
 * The pool's OAuth 1.0a credentials (RFC 5849): each request (each page, each retry: a new apply) is signed
 * afresh with its own nonce and timestamp. Nothing but an HMAC per request: no I/O, no Redis.
 */
export function oauth1Credentials(auth: OAuth1Auth, credentials: readonly CredentialConfig[], key: Buffer, clock: Clock = Date.now): Credential[] {
  return credentials.map((c) => {
    // c.secret: the consumer secret and the token secret (config.ts); c.user: the consumer key.
    const id = credentialId(c, key);
    const keys = { consumerKey: c.user!, consumerSecret: c.consumerSecret ?? '', token: c.token, tokenSecret: c.tokenSecret };
    const signing = signingKey(keys);
    // PLAINTEXT sends the signing key as the signature; scrub it in both forms it can take (as is, and header-encoded).
    const secrets = [...new Set([keys.consumerSecret, keys.tokenSecret ?? '', signing, percentEncode(signing)])].filter((s) => s !== '' && s !== '&');
    return {
      id,
      label: c.name ?? id,
      kind: 'oauth1',
      source: c.source ?? 'config',
      budget: c.budget,
      headerNames: ['authorization'],
      secrets,
      apply(p: OutgoingRequest): OutgoingRequest {
        const { authorization } = signOAuth1(p, keys, { method: auth.signatureMethod, realm: auth.realm, nonce: randomUUID().replaceAll('-', ''), timestamp: Math.floor(clock() / 1000) });
        return { ...p, headers: { ...p.headers, authorization } };
      },
    } satisfies Credential;
  });
}
