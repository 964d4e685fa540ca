import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { freePort } from '../local-redis.js';

/** A throwaway primary and its replica (asynchronous replication, no persistence), for tests and benches. */
export interface ReplicaPair {
  primaryUrl: string;
  replicaUrl: string;
  /** SIGSTOP the replica: it stays attached (connected_slaves 1) and acknowledges nothing, as a stalled one. */
  pauseReplica(): void;
  resumeReplica(): void;
  /** Detaches the replica (REPLICAOF NO ONE), or attaches it again. */
  detachReplica(): Promise<void>;
  attachReplica(): Promise<void>;
  stop(): Promise<void>;
}

function launch(port: number, extra: string[]): { child: ChildProcess; exited: Promise<void> } {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction', ...extra], { stdio: 'ignore' });
  child.once('error', () => undefined);
  return { child, exited: new Promise<void>((resolve) => child.once('exit', () => resolve())) };
}

async function until(what: string, check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${what} (is redis-server installed?)`);
    await sleep(50);
  }
}

/** Starts redis-server twice on free ports: a primary, and a replica of it; resolves once the replica is in sync. */
export async function startReplicaPair(): Promise<ReplicaPair> {
  const [p, q] = [await freePort(), await freePort()];
  // Its own directory: a replica's full sync writes the primary's RDB to disk.
  const dir = mkdtempSync(path.join(tmpdir(), 'pullq-replica-'));
  const primary = launch(p, ['--dir', dir]);
  const replica = launch(q, ['--dir', dir, '--replicaof', '127.0.0.1', String(p)]);
  const admin = (port: number) => {
    const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => 100 });
    r.on('error', () => undefined);
    return r;
  };
  const pr = admin(p);
  const rr = admin(q);
  const synced = async () => /master_link_status:up/.test(await rr.info('replication')) && /connected_slaves:1/.test(await pr.info('replication'));
  const stop = async () => {
    pr.disconnect();
    rr.disconnect();
    for (const s of [replica, primary]) {
      s.child.kill('SIGCONT');
      s.child.kill('SIGKILL');
      await s.exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await until('the replica did not sync with its primary', synced);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    primaryUrl: `redis://127.0.0.1:${p}`,
    replicaUrl: `redis://127.0.0.1:${q}`,
    pauseReplica: () => void replica.child.kill('SIGSTOP'),
    resumeReplica: () => void replica.child.kill('SIGCONT'),
    async detachReplica() {
      await rr.replicaof('NO', 'ONE');
      await until('the replica did not detach', async () => /connected_slaves:0/.test(await pr.info('replication')));
    },
    async attachReplica() {
      await rr.replicaof('127.0.0.1', p);
      await until('the replica did not sync again', synced);
    },
    stop,
  };
}
