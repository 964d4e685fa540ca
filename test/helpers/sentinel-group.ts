import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { freePort } from '../../scripts/local-redis.js';

/** A real Redis Sentinel group on this machine: a primary, one replica and 3 sentinels (redis-server --sentinel). */
export interface SentinelGroup {
  /** The master name the sentinels monitor. */
  name: string;
  /** redis://[:password@]127.0.0.1:<port> of each sentinel (config redis.sentinels; the password is the nodes'). */
  sentinelUrls: string[];
  primaryPort: number;
  replicaPort: number;
  /** A plain client of one node (not through Sentinel): for the test's own reads. */
  node(port: number): Redis;
  /** SIGKILL of the primary; the time it died (Date.now()). */
  killPrimary(): number;
  /** SIGSTOP / SIGCONT of the replica: it reads nothing from the primary while stopped. */
  pauseReplica(): void;
  resumeReplica(): void;
  /** Until every sentinel names the replica as the primary and the replica says role:master. */
  waitForFailover(timeoutMs?: number): Promise<void>;
  /** SIGKILL of every process, and the temp dir removed. */
  stop(): Promise<void>;
}

const NAME = 'pullqmaster';

/**
 * Starts the group on free ports with temp dirs, no persistence (`--save "" --appendonly no`), sentinels
 * with down-after-milliseconds 1000 and a short failover-timeout, and returns once the replica is in sync
 * and each sentinel knows the replica and the two other sentinels (so a failover can be voted at once).
 */
export async function startSentinelGroup(options: { password?: string; sentinelPassword?: string } = {}): Promise<SentinelGroup> {
  const { password, sentinelPassword } = options;
  const dir = mkdtempSync(path.join(tmpdir(), 'pullq-sentinel-'));
  const children = new Map<string, ChildProcess>();
  const clients: Redis[] = [];
  const start = async (label: string, args: string[]) => {
    const child = spawn('redis-server', args, { stdio: 'ignore', cwd: dir });
    children.set(label, child);
    await new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      child.once('spawn', () => resolve());
    });
  };
  const node = (port: number, pw = password) => {
    const r = new Redis({ host: '127.0.0.1', port, password: pw, maxRetriesPerRequest: 1, retryStrategy: () => 100, lazyConnect: false });
    r.on('error', () => undefined);
    clients.push(r);
    return r;
  };
  const stop = async () => {
    for (const c of clients) c.disconnect();
    for (const c of children.values()) {
      if (c.signalCode === 'SIGSTOP' || c.exitCode === null) c.kill('SIGCONT');
      c.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const primaryPort = await freePort();
    const replicaPort = await freePort();
    const sentinelPorts = [await freePort(), await freePort(), await freePort()];
    const base = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...(password ? ['--requirepass', password, '--masterauth', password] : [])];
    await start('primary', ['--port', String(primaryPort), ...base]);
    await start('replica', ['--port', String(replicaPort), ...base, '--replicaof', '127.0.0.1', String(primaryPort)]);
    for (const [i, port] of sentinelPorts.entries()) {
      const file = path.join(dir, `sentinel-${i}.conf`);
      writeFileSync(file, [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${NAME} 127.0.0.1 ${primaryPort} 2`,
        `sentinel down-after-milliseconds ${NAME} 1000`,
        `sentinel failover-timeout ${NAME} 3000`,
        `sentinel parallel-syncs ${NAME} 1`,
        ...(password ? [`sentinel auth-pass ${NAME} ${password}`] : []),
        ...(sentinelPassword ? [`requirepass ${sentinelPassword}`, `sentinel sentinel-pass ${sentinelPassword}`] : []),
        '',
      ].join('\n'));
      await start(`sentinel-${i}`, [file, '--sentinel']);
    }
    const replica = node(replicaPort);
    const sentinels = sentinelPorts.map((p) => node(p, sentinelPassword));
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (Date.now() > deadline) throw new Error('the sentinel group did not come up within 30 s');
      const synced = /master_link_status:up/.test(await replica.info('replication').catch(() => ''));
      const known = await Promise.all(sentinels.map(async (s) => {
        const replicas = (await s.call('SENTINEL', 'REPLICAS', NAME).catch(() => [])) as unknown[];
        const others = (await s.call('SENTINEL', 'SENTINELS', NAME).catch(() => [])) as unknown[];
        return replicas.length === 1 && others.length === 2;
      }));
      if (synced && known.every(Boolean)) break;
      await sleep(100);
    }
    return {
      name: NAME,
      sentinelUrls: sentinelPorts.map((p) => `redis://${password ? `:${encodeURIComponent(password)}@` : ''}127.0.0.1:${p}`),
      primaryPort,
      replicaPort,
      node,
      killPrimary: () => {
        children.get('primary')!.kill('SIGKILL');
        return Date.now();
      },
      pauseReplica: () => void children.get('replica')!.kill('SIGSTOP'),
      resumeReplica: () => void children.get('replica')!.kill('SIGCONT'),
      waitForFailover: async (timeoutMs = 30_000) => {
        const until = Date.now() + timeoutMs;
        for (;;) {
          const named = await Promise.all(sentinels.map(async (s) => ((await s.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', NAME).catch(() => [])) as string[])[1]));
          const role = await replica.info('replication').catch(() => '');
          if (named.every((p) => p === String(replicaPort)) && /role:master/.test(role)) return;
          if (Date.now() > until) throw new Error(`no failover within ${timeoutMs} ms (sentinels name ports ${named.join(', ')})`);
          await sleep(50);
        }
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
