import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { reconnectOnReadonly } from '../src/redis/connect-redis.js';
import { retryRedis } from '../src/redis/redis-retry.js';
import { RunStore } from '../src/runs/run-store.js';
import { redisUrl } from './helpers/test-env.js';

describe('reconnectOnReadonly: a primary demoted to replica', () => {
  it.each([
    ["READONLY You can't write against a read only replica.", 2],
    ['READONLY', 2],
    ['LOADING Redis is loading the dataset in memory', false],
    ['ERR unknown command', false],
    ['NOSCRIPT No matching script', false],
    ['WRONGTYPE Operation against a key holding the wrong kind of value', false],
    ['Connection is closed.', false],
  ] as const)('%s -> %s', (message, want) => {
    expect(reconnectOnReadonly(new Error(message))).toBe(want);
  });
});

describe('retryRedis', () => {
  const dropped = () => Object.assign(new Error('Connection is closed.'), {});

  it('retries a lost connection until the call works', async () => {
    let calls = 0;
    const v = await retryRedis(async () => {
      if (++calls < 3) throw dropped();
      return 'ok';
    }, 10_000);
    expect({ v, calls }).toEqual({ v: 'ok', calls: 3 });
  });

  it('stops retrying once told to, long before its deadline', async () => {
    let calls = 0;
    let stop = false;
    const p = retryRedis(async () => {
      if (++calls === 2) stop = true;
      throw dropped();
    }, 120_000, () => stop);
    await expect(p).rejects.toThrow('Connection is closed.');
    expect(calls).toBe(2);
  });

  it('throws other errors at once', async () => {
    let calls = 0;
    await expect(retryRedis(async () => {
      calls++;
      throw new Error('ERR wrong number of arguments');
    })).rejects.toThrow('ERR wrong');
    expect(calls).toBe(1);
  });
});

describe('RunStore.stopRetrying: a worker forced to close', () => {
  it('makes a call that is retrying through a closed connection fail at its next attempt instead of retrying for minutes', async () => {
    const redis = new Redis(redisUrl(), { maxRetriesPerRequest: null });
    await redis.ping();
    // Closed (as a replica's connection is once it stops): every attempt fails at once with "Connection is closed.".
    redis.disconnect();
    const store = new RunStore(redis, 'never');
    const call = store.status('r').then(() => 'answered', (err: Error) => err.message);
    await sleep(200);
    store.stopRetrying();
    const outcome = await Promise.race([call, sleep(5000).then(() => 'still retrying')]);
    expect(outcome).toBe('Connection is closed.');
  });
});
