import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { startExampleApi } from '../scripts/example-api-server.js';
import { startHmacApi } from './helpers/signing-apis.js';
import { cleanQueue, newRedis, onCluster, redisUrl, tempDir, uniqueQueue } from './helpers/test-env.js';

// What a user of the library does: install the packed tarball into a fresh project, type-check their
// code against it with tsc --strict, run it. Nothing of this repository is on that project's path.

const run = promisify(execFile);
const ROOT = path.resolve('.');
const tmp = tempDir('package');
afterAll(() => tmp.remove());
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string; devDependencies: Record<string, string> };

describe.skipIf(onCluster())('the packed package', () => {
  it('a fresh project installs the tarball, imports pullq, type-checks with tsc --strict and runs the custom sink and HMAC signer examples', async () => {
    // dist/ is built by `npm test` before vitest; packing must not build it again.
    await run('npm', ['pack', '--ignore-scripts', '--pack-destination', tmp.dir], { cwd: ROOT });
    const tarball = path.join(tmp.dir, `pullq-${pkg.version}.tgz`);
    expect(existsSync(tarball)).toBe(true);
    const { stdout: listing } = await run('tar', ['-tzf', tarball]);
    expect(listing).toContain('package/dist/src/index.d.ts');
    expect(listing).not.toMatch(/package\/(test|src)\//);

    const app = path.join(tmp.dir, 'app');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(app);
    writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    writeFileSync(
      path.join(app, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, outDir: 'out', types: ['node'], skipLibCheck: false }, include: ['*.ts'] }),
    );
    copyFileSync(path.join(ROOT, 'examples', 'custom-sink.ts'), path.join(app, 'custom-sink.ts'));
    copyFileSync(path.join(ROOT, 'examples', 'hmac-signer.ts'), path.join(app, 'hmac-signer.ts'));
    // The registry's packages come from npm's cache when they are there (npm ci filled it).
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball, `typescript@${pkg.devDependencies['typescript']}`, `@types/node@${pkg.devDependencies['@types/node']}`], { cwd: app, timeout: 240_000 });
    expect(readdirSync(path.join(app, 'node_modules', 'pullq'))).toContain('dist');

    // skipLibCheck off: pullq's own declarations must type-check in a strict project too.
    await run(process.execPath, [path.join(app, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'], { cwd: app }).catch((err: { stdout?: string }) => {
      throw new Error(`tsc --strict failed:\n${err.stdout ?? String(err)}`);
    });

    const api = await startExampleApi({});
    const queue = uniqueQueue('pkg');
    const out = path.join(tmp.dir, 'out');
    try {
      const { stdout } = await run(process.execPath, [path.join(app, 'out', 'custom-sink.js'), out, '1', '2', '3', '2', 'x y'], {
        cwd: app,
        env: { ...process.env, API_URL: api.url, REDIS_URL: redisUrl(), PULLQ_QUEUE: queue },
        timeout: 60_000,
      });
      expect(stdout).toMatch(/complete: 4 IDs, 4 succeeded, 0 failed/);
      const file = readdirSync(out).find((f) => f.endsWith('.ndjson.gz'))!;
      const lines = gunzipSync(readFileSync(path.join(out, file))).toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: string; data: { name: string } });
      expect(lines.map((l) => l.id).sort()).toEqual(['1', '2', '3', 'x y']);
      for (const l of lines) expect(l.data.name).toBe(`item ${l.id}`);
    } finally {
      await api.close();
      const redis = newRedis();
      await cleanQueue(redis, queue);
      redis.disconnect();
    }

    // The custom signer example (auth type "custom"), against an API that verifies every signature.
    const signing = await startHmacApi({ keys: { 'key-1': 'example secret' }, failOnce: ['2'] });
    const signerQueue = uniqueQueue('pkg-hmac');
    const signerOut = path.join(tmp.dir, 'hmac-out');
    try {
      const { stdout } = await run(process.execPath, [path.join(app, 'out', 'hmac-signer.js'), signerOut, '1', '2', 'x y', "it's"], {
        cwd: app,
        env: { ...process.env, API_URL: signing.url, API_KEY_ID: 'key-1', API_SECRET: 'example secret', REDIS_URL: redisUrl(), PULLQ_QUEUE: signerQueue },
        timeout: 60_000,
      });
      expect(stdout).toMatch(/complete: 4 IDs, 4 succeeded, 0 failed/);
      expect(signing.stats.rejected).toEqual(new Map());
      expect(signing.stats.unavailable).toBe(1);
      const run1 = readdirSync(signerOut)[0]!;
      const lines = readFileSync(path.join(signerOut, run1, 'results.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: string; data: { items: { q: string; body: string }[] } });
      expect(lines.map((l) => l.id).sort()).toEqual(['1', '2', "it's", 'x y']);
      for (const l of lines) expect(l.data.items[0]).toMatchObject({ q: l.id, body: JSON.stringify({ id: l.id }) });
    } finally {
      await signing.close();
      const redis = newRedis();
      await cleanQueue(redis, signerQueue);
      redis.disconnect();
    }
  }, 300_000);
});
