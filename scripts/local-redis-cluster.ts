import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Cluster } from 'ioredis';
import { freePort, redisAnswers } from './local-redis.js';
import type { TestCerts } from './test-certs.js';

const run = promisify(execFile);

export interface LocalCluster {
  /** A url naming the first node (pullq detects the cluster from it). */
  url: string;
  ports: number[];
  /** A Cluster client for checks and clean-up. */
  client(): Cluster;
  stop(): Promise<void>;
}

/**
 * A real Redis Cluster of `masters` nodes (no replicas) from the redis-server
 * and redis-cli binaries, on free ports, in a temporary directory: for tests
 * and benchmarks. Undefined when the binaries are missing. With `tls`, the
 * nodes speak TLS only (clients and the cluster bus) and the url is rediss://.
 */
export async function startLocalCluster(masters = 3, options: { password?: string; tls?: TestCerts } = {}): Promise<LocalCluster | undefined> {
  const pw = options.password;
  const tls = options.tls;
  const auth = pw ? ['--requirepass', pw, '--masterauth', pw] : [];
  const cliAuth = [...(pw ? ['-a', pw, '--no-auth-warning'] : []), ...(tls ? ['--tls', '--cacert', tls.ca] : [])];
  const userinfo = pw ? `:${encodeURIComponent(pw)}@` : '';
  const scheme = tls ? 'rediss' : 'redis';
  const listen = (port: number) =>
    tls
      ? ['--port', '0', '--tls-port', String(port), '--tls-cluster', 'yes', '--tls-replication', 'yes', '--tls-cert-file', tls.cert, '--tls-key-file', tls.key, '--tls-ca-cert-file', tls.ca, '--tls-auth-clients', 'no']
      : ['--port', String(port)];
  const dir = mkdtempSync(path.join(tmpdir(), 'pullq-cluster-'));
  const children: ChildProcess[] = [];
  const ports: number[] = [];
  const stop = async () => {
    for (const c of children) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters; i++) {
      const port = await freePort();
      ports.push(port);
      const child = spawn('redis-server', [...listen(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', path.join(dir, `nodes-${port}.conf`), '--save', '', '--appendonly', 'no', '--dir', dir, ...auth], { stdio: 'ignore' });
      children.push(child);
      await new Promise<void>((resolve, reject) => {
        child.once('error', reject);
        child.once('spawn', () => resolve());
      });
    }
    for (const port of ports) {
      let up = false;
      for (let i = 0; i < 50 && !up; i++) {
        up = tls
          ? (await run('redis-cli', [...cliAuth, '-p', String(port), 'ping']).catch(() => ({ stdout: '' }))).stdout.includes('PONG')
          : await redisAnswers(`redis://${userinfo}127.0.0.1:${port}`);
        if (!up) await new Promise((r) => setTimeout(r, 100));
      }
      if (!up) throw new Error(`redis-server on ${port} did not start`);
    }
    await run('redis-cli', [...cliAuth, '--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes']);
    // Every node must agree the cluster is up before clients use it.
    for (let i = 0; i < 100; i++) {
      const states = await Promise.all(ports.map(async (p) => (await run('redis-cli', [...cliAuth, '-p', String(p), 'cluster', 'info'])).stdout));
      if (states.every((s) => s.includes('cluster_state:ok'))) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await stop();
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return {
    url: `${scheme}://${userinfo}127.0.0.1:${ports[0]}`,
    ports,
    client: () => new Cluster(ports.map((port) => ({ host: '127.0.0.1', port })), { redisOptions: { maxRetriesPerRequest: null, password: pw, tls: tls ? { ca: readFileSync(tls.ca) } : undefined } }),
    stop,
  };
}

/** Deletes every key matching the patterns on every master of a cluster. */
export async function deleteClusterKeys(cluster: Cluster, patterns: string[]): Promise<void> {
  for (const node of cluster.nodes('master')) {
    for (const pattern of patterns) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        // One key at a time: keys of a scan may lie in different slots of this node.
        for (const k of keys) await node.del(k);
      } while (cursor !== '0');
    }
  }
}
