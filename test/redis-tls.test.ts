import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExampleApi, type ExampleApi } from '../scripts/example-api-server.js';
import { freePort } from '../scripts/local-redis.js';
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

beforeAll(async () => {
  const d = tmp.dir;
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=pullq-test-ca'], { cwd: d });
  await run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=127.0.0.1'], { cwd: d });
  writeFileSync(path.join(d, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  await run('openssl', ['x509', '-req', '-in', 'srv.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.crt', '-days', '2', '-extfile', 'ext.cnf'], { cwd: d });
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
});
