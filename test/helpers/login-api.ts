import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import { SignJWT } from 'jose';

// An API that hands out tokens from POST /login (auth type "login", issue #20), as internal APIs do:
// express 5 reads the JSON or form body, checks the account, issues a token that stops working after a
// while, and GET /items/:id wants it as a bearer token. Everything it saw is counted for the tests.

export interface LoginApiOptions {
  /** username → password. */
  accounts: Record<string, string>;
  /** Body fields holding the username and the password (default "username", "password"). */
  fields?: { username: string; password: string };
  /**
   * How a token's life ends, and what the answer says of it:
   * expires_in: `{ token, expires_in }`, dead after `seconds`;
   * jwt: `{ session: { jwt } }`, a JWT whose `exp` (now + seconds) is all that tells its lifetime;
   * requests: `{ token }` and no lifetime at all; dead after `n` requests (answered 401).
   */
  lifetime: { type: 'expires_in'; seconds: number } | { type: 'jwt'; seconds: number } | { type: 'requests'; n: number };
  latencyMs?: number;
}

export interface LoginApi {
  url: string;
  /** Successful logins per username. */
  logins: Map<string, number>;
  /** Logins refused (wrong password or unknown user). */
  refusedLogins: number;
  /** Content types the login requests came with. */
  loginContentTypes: Set<string>;
  /** Every token handed out (for the secrets test: none may leak). */
  issued: string[];
  /** /items requests answered 200, per username. */
  served: Map<string, number>;
  /** /items requests answered 401 (a dead or unknown token). */
  unauthorized: number;
  close(): Promise<void>;
}

interface Issued {
  user: string;
  /** Epoch ms after which the token is dead. */
  expiresAt: number;
  uses: number;
}

const jwtKey = new TextEncoder().encode('login-api-test-signing-key-0123456789');

export async function startLoginApi(options: LoginApiOptions): Promise<LoginApi> {
  const fields = options.fields ?? { username: 'username', password: 'password' };
  const tokens = new Map<string, Issued>();
  const api: Omit<LoginApi, 'url' | 'close'> = { logins: new Map(), refusedLogins: 0, loginContentTypes: new Set(), issued: [], served: new Map(), unauthorized: 0 };
  const app = express();
  app.use(express.json(), express.urlencoded({ extended: false }));

  app.post('/login', async (req, res) => {
    api.loginContentTypes.add(String(req.headers['content-type'] ?? '').split(';')[0]!);
    const body = (req.body ?? {}) as Record<string, unknown>;
    const user = body[fields.username];
    const password = body[fields.password];
    if (typeof user !== 'string' || typeof password !== 'string' || options.accounts[user] !== password) {
      api.refusedLogins++;
      res.status(401).json({ error: 'invalid username or password' });
      return;
    }
    api.logins.set(user, (api.logins.get(user) ?? 0) + 1);
    const lifetime = options.lifetime;
    if (lifetime.type === 'jwt') {
      const exp = Math.floor(Date.now() / 1000) + lifetime.seconds;
      const jwt = await new SignJWT({ sub: user }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(exp).setJti(randomBytes(8).toString('hex')).sign(jwtKey);
      tokens.set(jwt, { user, expiresAt: exp * 1000, uses: 0 });
      api.issued.push(jwt);
      res.json({ session: { jwt } });
      return;
    }
    const token = `lt-${randomBytes(12).toString('hex')}`;
    api.issued.push(token);
    if (lifetime.type === 'expires_in') {
      tokens.set(token, { user, expiresAt: Date.now() + lifetime.seconds * 1000, uses: 0 });
      res.json({ token, expires_in: lifetime.seconds });
    } else {
      tokens.set(token, { user, expiresAt: Infinity, uses: 0 });
      res.json({ token });
    }
  });

  app.get('/items/:id', async (req, res) => {
    if (options.latencyMs) await sleep(options.latencyMs);
    const auth = req.headers.authorization ?? '';
    const t = auth.startsWith('Bearer ') ? tokens.get(auth.slice(7)) : undefined;
    const lifetime = options.lifetime;
    const dead = !t || Date.now() >= t.expiresAt || (lifetime.type === 'requests' && t.uses >= lifetime.n);
    if (dead) {
      api.unauthorized++;
      res.status(401).json({ error: 'invalid or expired token' });
      return;
    }
    t.uses++;
    api.served.set(t.user, (api.served.get(t.user) ?? 0) + 1);
    res.json({ id: req.params.id, account: t.user });
  });

  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    ...api,
    get refusedLogins() {
      return api.refusedLogins;
    },
    get unauthorized() {
      return api.unauthorized;
    },
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
