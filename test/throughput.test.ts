import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExampleApi, type ExampleApi } from '../scripts/example-api-server.js';
import { readThroughput } from '../src/auth/read-throughput.js';
import { THROUGHPUT_BUCKET_MS, ThroughputRecorder } from '../src/auth/throughput-recorder.js';
import { fingerprint } from '../src/auth/credential.js';
import { credentialKey } from '../src/auth/credential-key.js';
import { queueKeys } from '../src/redis/keys.js';
import { runCli } from './helpers/cli.js';
import { cleanQueue, newRedis, redisUrl, tempDir, uniqueQueue } from './helpers/test-env.js';

// The dashboard's throughput chart reads per-credential answers in 10 s
// buckets that every worker adds to Redis (issue #11).

const redis = newRedis();
const tmp = tempDir('tp');
const queues: string[] = [];
let api: ExampleApi;
beforeAll(async () => {
  api = await startExampleApi({ auth: { type: 'header', tokens: ['tp-token-1'] } });
});
afterAll(async () => {
  await api.close();
  for (const q of queues) await cleanQueue(redis, q);
  redis.disconnect();
  tmp.remove();
});

describe('throughput buckets', () => {
  it('counts per credential and bucket, adds up across flushes and recorders, and expires after the hour', async () => {
    const queue = uniqueQueue('tp');
    queues.push(queue);
    const now = Date.now();
    const a = new ThroughputRecorder(redis, queue);
    const b = new ThroughputRecorder(redis, queue);
    a.record('fp-1', false, now);
    a.record('fp-1', true, now);
    a.record('fp-2', false, now - THROUGHPUT_BUCKET_MS);
    b.record('fp-1', false, now);
    await a.flush();
    a.record('fp-1', false, now);
    await Promise.all([a.close(), b.close()]);
    const points = await readThroughput(redis, queue, 60_000, now);
    expect(points).toHaveLength(6);
    expect(points.at(-1)!.byCredential).toEqual({ 'fp-1': { accepted: 3, rejected: 1 } });
    expect(points.at(-2)!.byCredential).toEqual({ 'fp-2': { accepted: 1, rejected: 0 } });
    expect(points.slice(0, 4).every((p) => Object.keys(p.byCredential).length === 0)).toBe(true);
    const ttl = await redis.pttl(queueKeys(queue).throughput(Math.floor(now / THROUGHPUT_BUCKET_MS)));
    expect(ttl).toBeGreaterThan(3_590_000);
    expect(ttl).toBeLessThanOrEqual(3_660_000);
  });

  it('a pull records every answer: 429s as rejected, the rest as accepted, under the credential id', async () => {
    const queue = uniqueQueue('tp');
    queues.push(queue);
    writeFileSync(path.join(tmp.dir, 'pullq.config.json'), JSON.stringify({ queue, request: { url: `${api.url}/items/{id}` }, auth: { type: 'header', tokens: ['tp-token-1'] }, retry: { baseDelayMs: 50, maxDelayMs: 200 } }));
    const ids = [...Array.from({ length: 20 }, (_, i) => `ok-${i}`), ...Array.from({ length: 5 }, (_, i) => `limited-${i}`)];
    writeFileSync(path.join(tmp.dir, 'ids.txt'), `${ids.join('\n')}\n`);
    const res = await runCli(['pull', 'ids.txt', '--run', 'tp'], { cwd: tmp.dir, env: { REDIS_URL: redisUrl() } });
    expect(res.stderr).not.toContain('tp-token-1');
    expect(res.code).toBe(0);
    const points = await readThroughput(redis, queue, 300_000);
    const id = `fp-${fingerprint('tp-token-1', '', await credentialKey(redis, queue))}`;
    const sum = { accepted: 0, rejected: 0 };
    for (const p of points) {
      expect(Object.keys(p.byCredential).every((k) => k === id)).toBe(true);
      sum.accepted += p.byCredential[id]?.accepted ?? 0;
      sum.rejected += p.byCredential[id]?.rejected ?? 0;
    }
    expect(sum).toEqual({ accepted: 25, rejected: 5 });
    expect(sum.accepted + sum.rejected).toBe(api.totalRequests());
  });
});
