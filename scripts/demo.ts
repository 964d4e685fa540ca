import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runtimeEnv } from '../src/config.js';
import { utcStamp } from '../src/runs/run-name.js';
import { startExampleApi } from './example-api-server.js';
import { ensureRedis } from './local-redis.js';

// `npm run demo`: a real pull of examples/ids.txt against the bundled example
// API (token-protected, with flaky, rate-limited and missing IDs), all on this machine.

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cli = path.join(root, 'dist/src/cli/main.js');

async function main(): Promise<number> {
  const env = runtimeEnv();
  const redis = await ensureRedis(env.redisUrl ?? 'redis://127.0.0.1:6379');
  if (!redis) {
    process.stderr.write('demo: Redis is not reachable at 127.0.0.1:6379 (or $REDIS_URL); start one with `docker compose up -d redis`, or install it with `apt-get install redis-server`\n');
    return 1;
  }
  if (redis.started) process.stderr.write(`demo: no Redis at 127.0.0.1:6379; started a throw-away redis-server at ${redis.url}\n`);
  const tokens = ['demo-token-alpha', 'demo-token-beta'];
  const api = await startExampleApi({ auth: { type: 'header', tokens }, latencyMs: 5 });
  const run = `demo-${utcStamp()}`;
  process.stdout.write(`demo: example API at ${api.url} (2 tokens); pulling examples/ids.txt as run ${run}\n\n`);
  try {
    const code = await new Promise<number>((resolve) => {
      const child = spawn(process.execPath, [cli, 'pull', path.join(root, 'examples/ids.txt'), '--config', path.join(root, 'examples/pullq.config.json'), '--run', run], {
        stdio: 'inherit',
        env: { ...process.env, REDIS_URL: redis.url, EXAMPLE_API_URL: api.url, DEMO_TOKEN_A: tokens[0], DEMO_TOKEN_B: tokens[1] },
      });
      child.on('close', (c) => resolve(c ?? 1));
    });
    const out = path.join(root, 'out', run);
    if (code === 0 && existsSync(out)) {
      const first = (f: string) => readFileSync(path.join(out, f), 'utf8').split('\n')[0];
      process.stdout.write(`\nfirst line of results.jsonl:\n  ${first('results.jsonl')}\nfirst line of failed.jsonl:\n  ${first('failed.jsonl')}\n`);
      process.stdout.write(`\nthe API served ${api.totalRequests()} requests for ${api.requestsById.size} distinct IDs (retries included)\nyour output is in ${path.relative(process.cwd(), out) || out}/\n`);
    }
    return code;
  } finally {
    await api.close();
    redis.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`demo: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
