import { createServer } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { createPullq } from '../src/api/create-pullq.js';
import { cleanQueue, newRedis, quietLogger, testConfig, uniqueQueue } from './helpers/test-env.js';

// `pullq login` names a client as the pool does (its name, else its fp- id), so LoginResult.client and its
// messages match `pullq credentials`. No IdP is needed: the login is aborted once its URL is out.

const redis = newRedis();
const queue = uniqueQueue('login-client');
afterAll(async () => {
  await cleanQueue(redis, queue);
  redis.disconnect();
});

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('pullq login names its client as pullq credentials does', () => {
  it('a client without a name is its fp- id, not its clientId; a named one its name', async () => {
    const config = testConfig({
      queue,
      request: { url: 'http://127.0.0.1:9/items/{id}' },
      auth: {
        type: 'oauth2', grant: 'authorization_code', tokenUrl: 'http://127.0.0.1:9/token', authorizeUrl: 'http://127.0.0.1:9/authorize', redirectPort: await freePort(),
        clients: [{ clientId: 'app-unnamed', clientSecret: 'conf-secret-1' }, { clientId: 'app-named', name: 'named' }],
      },
    });
    const pullq = createPullq(config, { logger: quietLogger() });
    try {
      const names = (await pullq.credentials()).map((c) => c.name);
      expect(names[0]).toMatch(/^fp-[0-9a-f]{12}$/);
      expect(names[1]).toBe('named');
      for (const [client, name] of [['app-unnamed', names[0]!], ['app-named', names[1]!]] as const) {
        const stop = new AbortController();
        let told = '';
        const login = pullq.login({ client, onUrl: (_u, info) => { told = info.client; stop.abort(); }, signal: stop.signal });
        await expect(login).rejects.toMatchObject({ code: 'login_aborted', message: `login of client ${name}: stopped before an answer came; nothing stored` });
        expect(told).toBe(name);
      }
    } finally {
      await pullq.close();
    }
  });
});
