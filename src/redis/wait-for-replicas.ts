import type { Cluster, Redis } from 'ioredis';
import type { RedisClient } from './connect-redis.js';

/** How long a step waits for a replica to acknowledge, by default (ms): a healthy replica answers in about a round trip. */
export const REPLICA_WAIT_MS = 2_000;
/** How often the number of attached replicas is read again (INFO replication), besides on every reconnect. */
export const REPLICA_COUNT_REFRESH_MS = 10_000;
/**
 * How long after a replica was last seen attached 0 replicas still means "not durable" (it dropped out:
 * partitioned or stopped past repl-timeout, it may still be promoted). Past this the primary is taken to be
 * alone for good (a replica removed, or the one left after a failover) and steps go on, with a warning.
 */
export const REPLICA_GONE_GRACE_MS = 60_000;

export interface ReplicaAck {
  /** Replicas attached to the primary that holds `key` (connected_slaves), as last read. */
  replicas: number;
  /** How many of them acknowledged every write made before the wait (0 when there are none). */
  acknowledged: number;
  /** Nothing to wait for (no replica), or at least one acknowledged: a failover to the best replica keeps what was read. */
  durable: boolean;
}

interface CountEntry {
  replicas: number;
  at: number;
}

/** Replica counts per client and routing key; dropped on every reconnect of that client (a failover). */
const counts = new WeakMap<RedisClient, Map<string, CountEntry>>();
/** When each client last saw a replica attached to its primary (forgotten on a reconnect: it may be another primary). */
const lastReplicaAt = new WeakMap<RedisClient, number>();
/** Per client, its own connection for WAIT (WAIT blocks the connection it is sent on); ends when the client ends. */
const waiters = new WeakMap<RedisClient, RedisClient>();

function waiterOf(redis: RedisClient): RedisClient {
  let w = waiters.get(redis);
  if (!w) {
    const dup: RedisClient = 'isCluster' in redis && redis.isCluster ? (redis as Cluster).duplicate() : (redis as Redis).duplicate();
    dup.on('error', () => undefined); // the original reports connection trouble; a failed WAIT rejects its caller
    waiters.set(redis, (w = dup));
    redis.once('end', () => {
      waiters.delete(redis);
      dup.disconnect();
    });
  }
  return w;
}

function countsOf(redis: RedisClient): Map<string, CountEntry> {
  let m = counts.get(redis);
  if (!m) {
    const fresh = new Map<string, CountEntry>();
    counts.set(redis, (m = fresh));
    // A reconnect may be to another primary (Sentinel failover): read its replicas again.
    redis.on('ready', () => {
      fresh.clear();
      lastReplicaAt.delete(redis);
    });
  }
  return m;
}

/** connected_slaves of an INFO replication text (0 when absent: a replica-less or unknown server). */
export function connectedReplicas(info: string): number {
  const m = /^connected_slaves:(\d+)/m.exec(info);
  return m ? Number(m[1]) : 0;
}

async function replicaCount(redis: RedisClient, key: string, now: number): Promise<number> {
  const m = countsOf(redis);
  const hit = m.get(key);
  if (hit && now - hit.at < REPLICA_COUNT_REFRESH_MS) return hit.replicas;
  // In a pipeline with a command on `key`: on Redis Cluster both go to the node that holds the key's slot.
  const replies = await redis.pipeline().exists(key).info('replication').exec();
  const [err, info] = replies?.[1] ?? [new Error('no reply to INFO replication')];
  if (err) throw err;
  const replicas = connectedReplicas(String(info));
  if (replicas > 0) lastReplicaAt.set(redis, now);
  m.set(key, { replicas, at: now });
  return replicas;
}

/**
 * Waits until at least one replica of the primary that holds `key` has every write that primary had made
 * (Redis WAIT), for at most `timeoutMs`. `key` names the keys the caller depends on (any key of the
 * queue: all share its hash tag), so on Redis Cluster the marker write and the WAIT go, in one pipeline,
 * to the node that holds them. The marker (`markerKey`, written first on this connection) makes the
 * WAIT cover writes other clients made (WAIT counts from this connection's last write).
 *
 * With no replica attached it is durable unless this client saw one attached less than
 * REPLICA_GONE_GRACE_MS ago (a replica partitioned or stopped past repl-timeout drops out of
 * connected_slaves, and may still be promoted); a reconnect forgets it (a failover: another primary).
 *
 * Costs nothing when the primary has no replica: the count (INFO replication) is read every
 * REPLICA_COUNT_REFRESH_MS and on every reconnect, and with none nothing is sent (WAIT 1 on a
 * replica-less Redis would block for the whole time-out). The marker SET and the WAIT go on a duplicate
 * of `redis`, created on first use and disconnected when `redis` ends: WAIT blocks the connection it is
 * sent on, and `redis` may be a worker's (takes, commits, lock renewals). Replication offsets are global,
 * so the marker written there covers every earlier write of every connection.
 */
export async function waitForReplicas(redis: RedisClient, options: { markerKey: string; timeoutMs?: number; now?: number }): Promise<ReplicaAck> {
  const timeoutMs = Math.max(1, Math.ceil(options.timeoutMs ?? REPLICA_WAIT_MS));
  const now = options.now ?? Date.now();
  const replicas = await replicaCount(redis, options.markerKey, now);
  if (replicas === 0) return { replicas, acknowledged: 0, durable: now - (lastReplicaAt.get(redis) ?? -Infinity) >= REPLICA_GONE_GRACE_MS };
  const replies = await waiterOf(redis).pipeline().set(options.markerKey, String(Date.now()), 'PX', 60_000).wait(1, timeoutMs).exec();
  const [err, n] = replies?.[1] ?? [new Error('no reply to WAIT')];
  if (err) throw err;
  const acknowledged = Number(n);
  return { replicas, acknowledged, durable: acknowledged >= 1 };
}
