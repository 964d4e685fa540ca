import { generateKeyPairSync } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { CredentialRefusedError } from '../src/auth/credential-errors.js';
import { RefreshTokenStore } from '../src/auth/refresh-token-store.js';
import { refreshGrant } from '../src/auth/kinds/oauth2-refresh-grant.js';
import type { OAuth2Auth } from '../src/auth/kinds/kind-context.js';
import { parseConfig, type CredentialConfig } from '../src/config.js';
import { ConfigError } from '../src/errors.js';
import { createLogger } from '../src/logger.js';
import { queueKeys } from '../src/redis/keys.js';
import { RefreshScripts } from '../src/redis/refresh-scripts.js';
import { cleanQueue, newRedis, uniqueQueue } from './helpers/test-env.js';

// A key jose cannot use with the configured algorithm (ES256 with an RSA key): a config error at load, and a
// refresh that meets one anyway fails before anything is marked in flight or sent (never "a lost answer").

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
const ed = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
const rsaJwk = JSON.stringify(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }));

const configWith = (privateKey: string, algorithm?: string) => ({
  request: { url: 'https://api.example.com/items/{id}' },
  auth: { type: 'oauth2', grant: 'client_credentials', tokenUrl: 'https://idp.example.com/token', clients: [{ clientId: 'svc', privateKey, ...(algorithm ? { algorithm } : {}) }] },
});

describe('auth.clients[N].algorithm must fit the key type, at load', () => {
  it.each<[string, string, string | undefined, boolean]>([
    ['RSA key, ES256', rsa, 'ES256', false],
    ['RSA key, EdDSA', rsa, 'EdDSA', false],
    ['RSA JWK, ES384', rsaJwk, 'ES384', false],
    ['P-256 key, RS256', p256, 'RS256', false],
    ['P-256 key, ES384 (another curve)', p256, 'ES384', false],
    ['Ed25519 key, ES256', ed, 'ES256', false],
    ['RSA key, RS256', rsa, 'RS256', true],
    ['RSA key, PS384', rsa, 'PS384', true],
    ['RSA JWK, RS512', rsaJwk, 'RS512', true],
    ['P-256 key, ES256', p256, 'ES256', true],
    ['Ed25519 key, EdDSA', ed, 'EdDSA', true],
    ['RSA key, no algorithm', rsa, undefined, true],
  ])('%s', (_, key, algorithm, ok) => {
    const parse = () => parseConfig(configWith(key, algorithm), { env: { vars: {} } });
    if (ok) expect(parse().credentials).toHaveLength(1);
    else expect(parse).toThrow(new RegExp(`auth\\.clients\\.0\\.algorithm: ${algorithm} cannot sign with`));
    if (!ok) expect(parse).toThrow(ConfigError);
  });
});

describe('a refresh with a key that cannot sign fails before it marks or sends anything', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });

  it('ES256 with an RSA key (past the config): refused for the key, no in-flight mark, the token endpoint never called', async () => {
    const queue = uniqueQueue('rtk');
    const redis = newRedis();
    cleanups.push(async () => {
      await cleanQueue(redis, queue);
      redis.disconnect();
    });
    const auth = { type: 'oauth2', grant: 'refresh_token', tokenUrl: 'http://127.0.0.1:1/token' } as unknown as OAuth2Auth;
    const c: CredentialConfig = { kind: 'oauth2', user: 'svc', secret: rsa, source: 'config', authMethod: 'private_key_jwt', privateKey: rsa, algorithm: 'ES256', refreshToken: 'rt-start' } as CredentialConfig;
    const store = new RefreshTokenStore(redis, queue, 'fp-keytest', 'seal', 'svc');
    const fetch = refreshGrant({ auth, c, label: 'svc', index: 0, store, scripts: new RefreshScripts(redis, queue, 'fp-keytest'), logger: createLogger('silent', 'json'), seen: new Set() });
    const lockKey = queueKeys(queue).oauthLock('fp-keytest');
    await redis.set(lockKey, 'me', 'PX', 15_000);
    const lock = { key: lockKey, owner: 'me', extend: async () => true };
    const err = await fetch(lock).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CredentialRefusedError);
    expect((err as CredentialRefusedError).reason).toMatch(/fix its privateKey$/);
    const st = await store.state();
    expect(st.inflight).toBeUndefined();
    expect(st.sealed).toBe('');
  });
});
