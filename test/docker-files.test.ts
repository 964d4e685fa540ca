import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseConfig } from '../src/config.js';

// No Docker engine runs here: check that what the Docker files name exists.

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const read = (f: string) => readFileSync(path.join(root, f), 'utf8');
const pkg = JSON.parse(read('package.json')) as { bin: Record<string, string>; engines: { node: string } };
const compose = parse(read('docker-compose.yml')) as { services: Record<string, Record<string, unknown>>; volumes: Record<string, unknown> };
const dockerfile = read('Dockerfile');
const cliCommands = read('src/cli/main.ts');
const ci = read('.ci/run');

/**
 * The Node LTS line the image runs: 24 ("Krypton"). Node 20 reached end of life in April 2026; the npm
 * registry's newest Node 26 build (26.12.1) is not an LTS release yet. `.ci/run` runs the unit suite on
 * this line too, so the image's runtime is the one tested.
 */
const NODE_LTS = 24;

describe('Dockerfile', () => {
  it('copies files that exist and runs the package bin', () => {
    for (const m of dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
      for (const src of m[1]!.split(/\s+/)) expect(existsSync(path.join(root, src)), src).toBe(true);
    }
    const entry = JSON.parse(/^ENTRYPOINT (.+)$/m.exec(dockerfile)![1]!) as string[];
    expect(entry).toEqual(['node', pkg.bin['pullq']]);
    expect(dockerfile).toMatch(/^RUN npm ci/m);
  });

  it(`builds and runs on the Node LTS line (${NODE_LTS}), the one .ci/run tests; package.json still admits Node 20`, () => {
    const bases = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]!);
    expect(bases).toHaveLength(2);
    for (const base of bases) expect(base).toBe(`node:${NODE_LTS}-bookworm-slim`);
    expect(NODE_LTS % 2, 'LTS lines are even majors').toBe(0);
    expect(ci).toContain(`"node-linux-$arch@${NODE_LTS}"`);
    expect(ci).toContain(`PULLQ_EXPECT_NODE=${NODE_LTS} `);
    expect(pkg.engines.node).toBe('>=20');
  });
});

describe('docker-compose.yml', () => {
  it('Redis keeps an AOF and never evicts', () => {
    const cmd = compose.services['redis']!['command'] as string[];
    expect(cmd.join(' ')).toContain('--appendonly yes');
    expect(cmd.join(' ')).toContain('--maxmemory-policy noeviction');
  });

  it('the worker service scales (no fixed name or host port) and runs a real pullq command', () => {
    const worker = compose.services['worker']!;
    expect(worker['container_name']).toBeUndefined();
    expect(worker['ports']).toBeUndefined();
    const [command] = worker['command'] as string[];
    expect(cliCommands).toContain(`case '${command}':`);
    expect((worker['environment'] as Record<string, string>)['REDIS_URL']).toBe('redis://redis:6379');
  });

  it('the worker config it mounts is valid', () => {
    const mount = (compose.services['worker']!['volumes'] as string[]).find((v) => v.includes('pullq.config.json'))!;
    const file = path.join(root, mount.split(':')[0]!);
    const config = parseConfig(JSON.parse(readFileSync(file, 'utf8')), { env: { vars: { TOKEN_A: 'a', TOKEN_B: 'b' } } });
    expect(config.request.url).toContain('http://example-api:8080/');
  });

  it('the example API entrypoint is built from scripts/', () => {
    const entry = compose.services['example-api']!['entrypoint'] as string[];
    const built = entry[1]!;
    expect(existsSync(path.join(root, built.replace(/^dist\//, '').replace(/\.js$/, '.ts')))).toBe(true);
  });
});
