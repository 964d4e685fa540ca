import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CredentialInfo } from '../src/index.js';
import { runCli } from './helpers/cli.js';
import { startLoginApi, type LoginApi } from './helpers/login-api.js';
import { cleanQueue, newRedis, redisUrl, tempDir, uniqueQueue } from './helpers/test-env.js';

// `pullq credentials [--json]` (issue #20), spawned as users run it, against real Redis: the pool as the fleet
// sees it after a pull in which the login endpoint refused one account.

const tmp = tempDir('creds');
const queue = uniqueQueue('creds');
const fileQueue = uniqueQueue('creds-file');
let api: LoginApi;
const PW_A = 'creds-pass-A-7f3';
const PW_B = 'creds-pass-B-wrong-9d1';
beforeAll(async () => {
  api = await startLoginApi({ accounts: { ann: PW_A }, lifetime: { type: 'expires_in', seconds: 60 } });
  writeFileSync(path.join(tmp.dir, 'pullq.config.json'), JSON.stringify({
    queue,
    request: { url: `${api.url}/items/{id}` },
    auth: { type: 'login', loginUrl: `${api.url}/login`, expiresInPath: 'expires_in', accounts: [{ username: 'ann', password: '${PW_A}', name: 'acct-a' }, { username: 'bob', password: '${PW_B}' }] },
    sink: { type: 'file', dir: './out' },
  }));
  writeFileSync(path.join(tmp.dir, 'tokens.txt'), 'file-token-one-5e2\n# a comment\nfile-token-two-8c4\n');
  writeFileSync(path.join(tmp.dir, 'file.json'), JSON.stringify({ queue: fileQueue, request: { url: `${api.url}/items/{id}` }, auth: { type: 'header', tokensFile: 'tokens.txt' } }));
  writeFileSync(path.join(tmp.dir, 'ids.txt'), Array.from({ length: 30 }, (_, i) => `c-${i}`).join('\n'));
});
afterAll(async () => {
  await api.close();
  const redis = newRedis();
  await cleanQueue(redis, queue);
  await cleanQueue(redis, fileQueue);
  redis.disconnect();
  tmp.remove();
});
const env = () => ({ REDIS_URL: redisUrl(), PW_A, PW_B });
const secrets = () => [PW_A, PW_B, encodeURIComponent(PW_A), 'file-token-one-5e2', 'file-token-two-8c4', ...api.issued];

describe('pullq credentials', () => {
  it('after a pull: the refused account shows as quarantined with its reason, the other ok; human lines and --json; no secret in either', async () => {
    const before = await runCli(['credentials', '--json'], { cwd: tmp.dir, env: env() });
    expect(before.code, before.stderr).toBe(0);
    expect((JSON.parse(before.stdout) as { credentials: CredentialInfo[] }).credentials.map((c) => c.state)).toEqual(['ok', 'ok']);
    // Looking sends no request: nobody logged in yet.
    expect(api.logins.size + api.refusedLogins).toBe(0);

    const pull = await runCli(['pull', 'ids.txt', '--run', 'creds'], { cwd: tmp.dir, env: env() });
    expect(pull.code, pull.stderr).toBe(0);

    const json = await runCli(['credentials', '--json'], { cwd: tmp.dir, env: env() });
    expect(json.code, json.stderr).toBe(0);
    expect(json.stderr).toBe('');
    const { credentials } = JSON.parse(json.stdout) as { credentials: CredentialInfo[] };
    expect(credentials).toHaveLength(2);
    expect(credentials[0]).toEqual({ name: 'acct-a', id: expect.stringMatching(/^fp-[0-9a-f]{12}$/), kind: 'login', state: 'ok', until: null, reason: null, source: 'config' });
    expect(credentials[1]).toEqual({
      name: credentials[1]!.id,
      id: expect.stringMatching(/^fp-[0-9a-f]{12}$/),
      kind: 'login',
      state: 'quarantined',
      until: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      reason: 'login refused (HTTP 401): check its username and password',
      source: 'config',
    });
    expect(Date.parse(credentials[1]!.until!)).toBeGreaterThan(Date.now() + 23 * 3600_000);

    const human = await runCli(['credentials'], { cwd: tmp.dir, env: env() });
    expect(human.code, human.stderr).toBe(0);
    const lines = human.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^credential\s+kind\s+source\s+state$/);
    expect(lines[1]).toMatch(/^acct-a\s+login\s+config\s+ok$/);
    expect(lines[2]).toMatch(new RegExp(`^${credentials[1]!.id}\\s+login\\s+config\\s+quarantined: login refused \\(HTTP 401\\): check its username and password \\(until ${credentials[1]!.until!.replace(/\./g, '\\.')}\\)$`));
    // Aligned: every column starts at the same place on each line.
    for (const word of ['kind', 'source', 'state']) {
      const at = lines[0]!.indexOf(word);
      for (const l of lines.slice(1)) expect(l[at - 1]).toBe(' ');
      for (const l of lines.slice(1)) expect(l[at]).not.toBe(' ');
    }

    expect(api.issued.length).toBeGreaterThan(0);
    for (const s of secrets()) {
      expect(json.stdout + json.stderr, `--json output holds ${s}`).not.toContain(s);
      expect(human.stdout + human.stderr, `human output holds ${s}`).not.toContain(s);
    }
  });

  it('credentials from a tokensFile say so', async () => {
    const r = await runCli(['credentials', '--json', '--config', 'file.json'], { cwd: tmp.dir, env: env() });
    expect(r.code, r.stderr).toBe(0);
    const { credentials } = JSON.parse(r.stdout) as { credentials: CredentialInfo[] };
    expect(credentials.map((c) => [c.kind, c.source, c.state])).toEqual([['header', 'tokensFile', 'ok'], ['header', 'tokensFile', 'ok']]);
    for (const s of secrets()) expect(r.stdout).not.toContain(s);
  });

  it('a config error and a dead Redis: one line each, exit 1', async () => {
    const bad = await runCli(['credentials'], { cwd: tmp.dir, env: { REDIS_URL: redisUrl(), PW_A } });
    expect(bad.code).toBe(1);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toMatch(/^pullq: .*pullq\.config\.json: auth\.accounts\.1\.password: environment variable PW_B is not set\n$/);
    const dead = await runCli(['credentials', '--json'], { cwd: tmp.dir, env: { ...env(), REDIS_URL: 'redis://127.0.0.1:1' } });
    expect(dead.code).toBe(1);
    expect(dead.stdout).toBe('');
    expect(dead.stderr).toMatch(/^pullq: cannot reach Redis at redis:\/\/127\.0\.0\.1:1 [^\n]*\n$/);
  });
});
