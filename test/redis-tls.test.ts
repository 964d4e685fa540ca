import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExampleApi, type ExampleApi } from '../scripts/example-api-server.js';
import { freePort } from '../scripts/local-redis.js';
import { startLocalCluster } from '../scripts/local-redis-cluster.js';
import { makeTestCerts, type TestCerts } from '../scripts/test-certs.js';
import { runCli } from './helpers/cli.js';
import { readOutput } from './helpers/pull-in-process.js';
import { tempDir, uniqueQueue } from './helpers/test-env.js';

// Issue #10: managed Redis speaks TLS (rediss://) and wants a password. A
// redis-server with a TLS port only, a certificate from a throw-away CA
// (trusted through NODE_EXTRA_CA_CERTS, as a user would add theirs), and
// requirepass: pullq pulls through it, and never prints the password.

const run = promisify(execFile);
const tmp = tempDir('tls');
const PASSWORD = 'tls-Secret-91c2';
let server: ChildProcess;
let port: number;
let api: ExampleApi;
let certs: TestCerts;

beforeAll(async () => {
  const d = tmp.dir;
  certs = await makeTestCerts(d);
  port = await freePort();
  server = spawn('redis-server', ['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--tls-cert-file', 'srv.crt', '--tls-key-file', 'srv.key', '--tls-ca-cert-file', 'ca.crt', '--tls-auth-clients', 'no', '--requirepass', PASSWORD, '--save', '', '--appendonly', 'no'], { cwd: d, stdio: 'ignore' });
  for (let i = 0; i < 50; i++) {
    const r = await run('redis-cli', ['--tls', '--cacert', 'ca.crt', '-p', String(port), '-a', PASSWORD, '--no-auth-warning', 'ping'], { cwd: d }).catch(() => ({ stdout: '' }));
    if (r.stdout.includes('PONG')) break;
    await sleep(100);
  }
  api = await startExampleApi({ auth: { type: 'header', tokens: ['tls-token'] } });
}, 60_000);

afterAll(async () => {
  server?.kill('SIGKILL');
  await api?.close();
  tmp.remove();
});

describe('Redis over TLS with a password', () => {
  it('rediss://:password@host works end to end; a wrong password fails in one line that never shows it', async () => {
    const queue = uniqueQueue('tls');
    writeFileSync(path.join(tmp.dir, 'pullq.config.json'), JSON.stringify({ queue, request: { url: `${api.url}/items/{id}` }, auth: { type: 'header', tokens: ['tls-token'] }, sink: { type: 'file', dir: './out' } }));
    const ids = Array.from({ length: 60 }, (_, i) => `t${i}`);
    writeFileSync(path.join(tmp.dir, 'ids.txt'), `${ids.join('\n')}\n`);
    const env = (password: string) => ({ REDIS_URL: `rediss://:${encodeURIComponent(password)}@127.0.0.1:${port}`, NODE_EXTRA_CA_CERTS: path.join(tmp.dir, 'ca.crt'), PULLQ_LOG_LEVEL: 'warn' });
    const ok = await runCli(['pull', 'ids.txt', '--run', 'tls'], { cwd: tmp.dir, env: env(PASSWORD) });
    expect(ok.stderr).not.toContain(PASSWORD);
    expect(ok.code).toBe(0);
    const out = readOutput(path.join(tmp.dir, 'out'), 'tls');
    expect(out.results.map((r) => r.id).sort()).toEqual([...ids].sort());
    const bad = await runCli(['status'], { cwd: tmp.dir, env: env('wrong-Pass-77') });
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/rediss:\/\/.*\*\*\*/);
    expect(bad.stderr).not.toContain('wrong-Pass-77');
    expect(bad.stderr).not.toContain(PASSWORD);
  });

  it('a TLS-only Redis Cluster with a password: redis.url rediss://:${REDIS_PASSWORD}@ naming one node pulls exactly once across the shards', async () => {
    const cluster = await startLocalCluster(3, { password: PASSWORD, tls: certs });
    if (!cluster) throw new Error('redis-server/redis-cli missing: .ci/run installs them');
    try {
      const dir = path.join(tmp.dir, 'cluster');
      mkdirSync(dir);
      const queue = uniqueQueue('tlsc');
      writeFileSync(path.join(dir, 'pullq.config.json'), JSON.stringify({ queue, request: { url: `${api.url}/items/{id}` }, auth: { type: 'header', tokens: ['tls-token'] }, sink: { type: 'file', dir: './out' }, enqueue: { batchSize: 20 },
        // The password from the environment (${VAR}), as a managed Redis's would be.
        redis: { url: cluster.url.replace(`:${encodeURIComponent(PASSWORD)}@`, ':${REDIS_PASSWORD}@') } }));
      const ids = Array.from({ length: 300 }, (_, i) => `c${i}`);
      writeFileSync(path.join(dir, 'ids.txt'), `${ids.join('\n')}\n`);
      const env = { REDIS_PASSWORD: PASSWORD, NODE_EXTRA_CA_CERTS: certs.ca, PULLQ_LOG_LEVEL: 'warn' };
      const res = await runCli(['pull', 'ids.txt', '--run', 'tlsc', '--workers', '2'], { cwd: dir, env });
      expect(res.stderr).not.toContain(PASSWORD);
      expect(res.code).toBe(0);
      const out = readOutput(path.join(dir, 'out'), 'tlsc');
      expect(out.results.map((r) => r.id).sort()).toEqual([...ids].sort());
      const status = await runCli(['status', '--run', 'tlsc', '--json'], { cwd: dir, env });
      expect(JSON.parse(status.stdout)).toMatchObject({ total: 300, succeeded: 300, complete: true });
      // It really went through the cluster: the queue's keys are on the node owning its slot, over TLS.
      const client = cluster.client();
      try {
        expect(await client.exists(`pullq:{${queue}}:runs`)).toBe(1);
      } finally {
        client.disconnect();
      }
    } finally {
      await cluster.stop();
    }
  }, 120_000);
});
