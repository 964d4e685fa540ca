import { spawn, type ChildProcess } from 'node:child_process';
import type { TestProject } from 'vitest/node';
import { freePort, redisAnswers } from '../../scripts/local-redis.js';

// Redis for the tests: REDIS_URL when set; else testcontainers when a Docker
// engine answers; else a redis-server binary on a free port; else one clear line.

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

let stop: (() => Promise<void>) | undefined;

async function fromTestcontainers(): Promise<string | undefined> {
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await Promise.race([getContainerRuntimeClient(), new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 5000))]);
  } catch {
    return undefined;
  }
  const { RedisContainer } = await import('@testcontainers/redis');
  const container = await new RedisContainer('redis:7-alpine').start();
  stop = async () => void (await container.stop());
  return container.getConnectionUrl();
}

async function fromBinary(): Promise<string | undefined> {
  const port = await freePort();
  let child: ChildProcess;
  try {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    await new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      child.once('spawn', () => resolve());
    });
  } catch {
    return undefined;
  }
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 50; i++) {
    if (await redisAnswers(url)) {
      stop = async () => void child.kill('SIGTERM');
      return url;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  return undefined;
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let url = process.env['REDIS_URL'];
  if (url) {
    if (!(await redisAnswers(url))) throw new Error(`tests: REDIS_URL=${url} does not answer PING`);
  } else {
    url = (await fromTestcontainers()) ?? (await fromBinary());
  }
  if (!url) throw new Error('tests need Redis: set REDIS_URL, or run a Docker engine, or install redis-server (apt-get install redis-server)');
  project.provide('redisUrl', url);
  return async () => {
    await stop?.();
  };
}
