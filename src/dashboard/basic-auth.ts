import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * HTTP basic auth (RFC 7617) with one password and any user name: the
 * dashboard's gate when it is reachable from elsewhere. Compared in constant
 * time; a refusal names nothing but the realm.
 */
export function basicAuth(password: string, realm = 'pullq dashboard'): RequestHandler {
  const expected = digest(password);
  return (req, res, next) => {
    const header = req.headers.authorization ?? '';
    const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
    const decoded = m ? Buffer.from(m[1]!, 'base64').toString('utf8') : '';
    const colon = decoded.indexOf(':');
    if (colon >= 0 && timingSafeEqual(digest(decoded.slice(colon + 1)), expected)) return next();
    res
      .status(401)
      .set('www-authenticate', `Basic realm="${realm}", charset="UTF-8"`)
      .type('text/plain')
      .send('password required\n');
  };
}
