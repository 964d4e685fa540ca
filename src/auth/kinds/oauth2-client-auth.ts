import { createPrivateKey, type KeyObject } from 'node:crypto';
import * as oauth from 'oauth4webapi';
import { importJWK, importPKCS8, type JWK } from 'jose';
import { isLoopbackHost, type CredentialConfig } from '../../config.js';
import { CredentialRefusedError } from '../credential-errors.js';

/** Time-out of one token-endpoint call (ms): well under the fleet's 15 s refresh lock, so two replicas never fetch at once. */
export const TOKEN_TIMEOUT_MS = 10_000;

/** The token endpoint (and authorize URL) as oauth4webapi takes them; no discovery: the config names the endpoints. */
export function authorizationServer(tokenUrl: string, authorizeUrl?: string): oauth.AuthorizationServer {
  const issuer = new URL(tokenUrl).origin;
  return { issuer, token_endpoint: tokenUrl, ...(authorizeUrl ? { authorization_endpoint: authorizeUrl } : {}) };
}

/** Request options for oauth4webapi: plain http allowed only for loopback hosts (tests, a local IdP), and a time-out. */
export function endpointOptions(url: string, timeoutMs = TOKEN_TIMEOUT_MS): { [oauth.allowInsecureRequests]?: boolean; signal: AbortSignal } {
  const u = new URL(url);
  return { signal: AbortSignal.timeout(timeoutMs), ...(u.protocol === 'http:' && isLoopbackHost(u.hostname) ? { [oauth.allowInsecureRequests]: true } : {}) };
}

/** A private key ready to sign with: the WebCrypto key, its JWS algorithm and its `kid`. */
export interface SigningKey extends oauth.PrivateKey {
  alg: string;
}

/**
 * A private key from its text: PKCS #8 PEM (also PKCS #1 "RSA PRIVATE KEY" and SEC 1 "EC PRIVATE KEY", turned
 * into PKCS #8), a PEM with literal "\n" (an environment variable, a Google key file's private_key), or a JWK.
 * The algorithm: the configured one, else the JWK's alg, else by key type (RSA RS256; EC P-256/384/521 ES256/384/512;
 * Ed25519 EdDSA). Errors name the format, never the key: JSON.parse's message quotes the text, so it is not kept.
 */
export async function importPrivateKey(text: string, algorithm: string | undefined, keyId: string | undefined, at: string): Promise<SigningKey> {
  const trimmed = text.trim();
  const fail = (why: string, cause?: unknown) => new CredentialRefusedError('oauth2_key_invalid', `${at}: ${why}`, `${why}; fix its privateKey`, cause === undefined ? {} : { cause });
  if (trimmed.startsWith('{')) {
    let jwk: JWK;
    try {
      jwk = JSON.parse(trimmed) as JWK;
    } catch {
      throw fail('the private key is not valid JSON (a JWK)');
    }
    if (typeof jwk.d !== 'string') throw fail('the JWK has no "d": a public key, not a private one');
    const alg = algorithm ?? jwk.alg ?? algOf(jwk.kty === 'EC' ? 'ec' : jwk.kty === 'OKP' ? 'ed25519' : 'rsa', jwk.crv);
    try {
      return { key: (await importJWK(jwk, alg, { extractable: false })) as oauth.CryptoKey, kid: keyId ?? jwk.kid, alg };
    } catch (err) {
      throw fail(`the JWK cannot be used with ${alg}: ${(err as Error).message}`, err);
    }
  }
  let object: KeyObject;
  try {
    object = createPrivateKey(trimmed.replace(/\\n/g, '\n'));
  } catch (err) {
    throw fail(`the private key is not a PEM private key or a JWK (${(err as { code?: string }).code ?? 'unreadable'})`);
  }
  const alg = algorithm ?? algOf(object.asymmetricKeyType, object.asymmetricKeyDetails?.namedCurve);
  try {
    const pkcs8 = object.export({ type: 'pkcs8', format: 'pem' }) as string;
    return { key: await importPKCS8(pkcs8, alg, { extractable: false }), kid: keyId, alg };
  } catch (err) {
    throw fail(`the private key cannot be used with ${alg}: ${(err as Error).message}`, err);
  }
}

/** The JWS algorithm a key of this type signs with by default (node's key type and curve names, or a JWK's crv). */
function algOf(type: string | undefined, curve: string | undefined): string {
  if (type === 'ec') return curve === 'secp384r1' || curve === 'P-384' ? 'ES384' : curve === 'secp521r1' || curve === 'P-521' ? 'ES512' : 'ES256';
  if (type === 'ed25519') return 'EdDSA';
  if (type === 'rsa-pss') return 'PS256';
  return 'RS256';
}

/**
 * How a client authenticates at the token endpoint (CredentialConfig.authMethod, resolved by the config). For
 * private_key_jwt (RFC 7523 §2.2) oauth4webapi signs a fresh assertion per call (jti, iat, exp = iat + 60 s); its
 * `aud` is the token endpoint's URL (OpenID Connect Core §9, RFC 7523 §3), which servers accept whatever their issuer.
 */
export async function clientAuthOf(c: CredentialConfig, at: string): Promise<oauth.ClientAuth> {
  switch (c.authMethod ?? (c.secret ? 'client_secret_basic' : 'none')) {
    case 'client_secret_basic':
      return oauth.ClientSecretBasic(c.secret);
    case 'client_secret_post':
      return oauth.ClientSecretPost(c.secret);
    case 'private_key_jwt': {
      const key = await importPrivateKey(c.privateKey!, c.algorithm, c.keyId, at);
      // The endpoint being called (token, and whatever another grant calls) is the audience.
      return (as, client, body, headers) =>
        oauth.PrivateKeyJwt(key, { [oauth.modifyAssertion]: (_header, payload) => void (payload.aud = as.token_endpoint ?? as.issuer) })(as, client, body, headers);
    }
    case 'none':
      return oauth.None();
  }
}

/** clientAuthOf once per client (the key imported once; each call still signs a fresh assertion). */
export function clientAuthLoader(c: CredentialConfig, at: string): () => Promise<oauth.ClientAuth> {
  let loaded: Promise<oauth.ClientAuth> | undefined;
  return () => (loaded ??= clientAuthOf(c, at));
}
