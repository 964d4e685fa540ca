import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/**
 * Seals an OAuth2 access token for the fleet's shared Redis cache with
 * AES-256-GCM under a key derived (HKDF-SHA256) from the client secret, so a
 * Redis dump alone holds no usable token. Returns base64 "iv.tag.ciphertext".
 */
export function sealToken(plaintext: string, clientSecret: string, clientId: string): string {
  const key = deriveKey(clientSecret, clientId);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return [iv, cipher.getAuthTag(), body].map((b) => b.toString('base64')).join('.');
}

/** Opens what sealToken made; undefined when it was sealed under another secret or tampered with. */
export function openToken(sealed: string, clientSecret: string, clientId: string): string | undefined {
  const [iv, tag, body] = sealed.split('.').map((p) => Buffer.from(p, 'base64'));
  if (!iv || !tag || !body) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', deriveKey(clientSecret, clientId), iv);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}

function deriveKey(clientSecret: string, clientId: string): Buffer {
  return Buffer.from(hkdfSync('sha256', clientSecret, `pullq:${clientId}`, 'pullq oauth2 token cache v1', 32));
}
