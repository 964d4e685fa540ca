import * as oauth from 'oauth4webapi';
import { importJWK, importPKCS8, type JWK } from 'jose';
import type { CredentialConfig } from '../../config.js';
import { ConfigError } from '../../errors.js';

/** The token endpoint (and authorize URL) as oauth4webapi takes them; no discovery: the config names the endpoints. */
export function authorizationServer(tokenUrl: string, authorizeUrl?: string): oauth.AuthorizationServer {
  const issuer = new URL(tokenUrl).origin;
  return { issuer, token_endpoint: tokenUrl, ...(authorizeUrl ? { authorization_endpoint: authorizeUrl } : {}) };
}

/** Request options for oauth4webapi: plain http allowed only for loopback hosts (tests, a local IdP), and a time-out. */
export function endpointOptions(url: string, timeoutMs: number): { [oauth.allowInsecureRequests]?: boolean; signal: AbortSignal } {
  const host = new URL(url).hostname;
  const loopback = host === 'localhost' || host === '[::1]' || /^127\./.test(host);
  return { signal: AbortSignal.timeout(timeoutMs), ...(new URL(url).protocol === 'http:' && loopback ? { [oauth.allowInsecureRequests]: true } : {}) };
}

/** A PEM (PKCS #8) or JWK private key, with its algorithm: the JWK's alg, the configured one, else RS256 / ES256 / EdDSA by key type. */
export async function importPrivateKey(text: string, algorithm: string | undefined, keyId: string | undefined, at: string): Promise<oauth.PrivateKey> {
  const trimmed = text.trim();
  try {
    if (trimmed.startsWith('{')) {
      const jwk = JSON.parse(trimmed) as JWK;
      const alg = algorithm ?? jwk.alg ?? (jwk.kty === 'EC' ? 'ES256' : jwk.kty === 'OKP' ? 'EdDSA' : 'RS256');
      const key = (await importJWK(jwk, alg)) as oauth.CryptoKey;
      return { key, kid: keyId ?? jwk.kid };
    }
    // A PEM with literal "\n" (an environment variable, a Google key file's private_key) is a PEM too.
    const pem = trimmed.replace(/\\n/g, '\n');
    const alg = algorithm ?? (await guessPemAlg(pem));
    return { key: await importPKCS8(pem, alg, { extractable: false }), kid: keyId };
  } catch (err) {
    // jose's message names the format, never the key.
    throw new ConfigError(`${at}: not a usable private key (PKCS #8 PEM or a JWK): ${(err as Error).message}`, { cause: err });
  }
}

async function guessPemAlg(pem: string): Promise<string> {
  const { createPrivateKey } = await import('node:crypto');
  const type = createPrivateKey(pem).asymmetricKeyType;
  return type === 'ec' ? 'ES256' : type === 'ed25519' ? 'EdDSA' : 'RS256';
}

/** How a client authenticates at the token endpoint (CredentialConfig.authMethod, resolved by the config). */
export async function clientAuthOf(c: CredentialConfig, at: string): Promise<oauth.ClientAuth> {
  switch (c.authMethod ?? (c.secret ? 'client_secret_basic' : 'none')) {
    case 'client_secret_basic':
      return oauth.ClientSecretBasic(c.secret);
    case 'client_secret_post':
      return oauth.ClientSecretPost(c.secret);
    case 'private_key_jwt':
      return oauth.PrivateKeyJwt(await importPrivateKey(c.privateKey!, c.algorithm, c.keyId, at));
    case 'none':
      return oauth.None();
  }
}
