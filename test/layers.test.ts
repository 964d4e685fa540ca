import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

// The layers go one way (index → cli → api → workers → jobs → runs/auth/sinks → redis), with
// pure policy, HTTP parsing and ID handling below them and config, errors and
// the logger at the bottom. No module imports a layer above its own, and no
// two modules import each other, even through others.

const SRC = path.resolve('src');
const RANK: Record<string, number> = { index: 8, cli: 7, api: 6, workers: 5, dashboard: 5, jobs: 4, runs: 3, auth: 3, sinks: 3, redis: 2, policy: 2, http: 1, ids: 1, metrics: 1, config: 0, errors: 0, logger: 0 };

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const layerOf = (file: string): string => path.relative(SRC, file).split(path.sep)[0]!.replace(/\.ts$/, '');

const imports = new Map<string, string[]>();
for (const file of files(SRC)) {
  const text = readFileSync(file, 'utf8');
  const targets = [...text.matchAll(/(?:from |import\()'(\.[^']+)\.js'/g)].map((m) => path.resolve(path.dirname(file), `${m[1]}.ts`));
  imports.set(file, targets);
}

describe('layers', () => {
  it('every module is in a known layer and imports only its own layer or those below', () => {
    const upward: string[] = [];
    for (const [file, targets] of imports) {
      const from = layerOf(file);
      expect(RANK[from], `${from} has no rank in test/layers.test.ts`).toBeDefined();
      for (const t of targets) {
        const to = layerOf(t);
        if (to !== from && (RANK[to] ?? 99) > RANK[from]!) upward.push(`${path.relative(SRC, file)} → ${path.relative(SRC, t)}`);
      }
    }
    expect(upward).toEqual([]);
  });

  it('no import cycles between modules', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (file: string, trail: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') {
        cycles.push([...trail.slice(trail.indexOf(file)), file].map((f) => path.relative(SRC, f)).join(' → '));
        return;
      }
      state.set(file, 'open');
      for (const t of imports.get(file) ?? []) visit(t, [...trail, file]);
      state.set(file, 'done');
    };
    for (const file of imports.keys()) visit(file, []);
    expect(cycles).toEqual([]);
  });
});
