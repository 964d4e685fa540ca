import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { watchCredentials, type CredentialSetTarget } from '../src/auth/watch-credentials.js';
import { parseConfig, readCredentialSet, type CredentialConfig } from '../src/config.js';
import { tempDir } from './helpers/test-env.js';

// The watcher on its own, with the config's own reader and a set holder that records what it was given.

const tmp = tempDir('watch-credentials');
afterAll(() => tmp.remove());

function holder(): CredentialSetTarget & { sets: string[][] } {
  const sets: string[][] = [];
  let size = 0;
  return {
    sets,
    get size() {
      return size;
    },
    async replace(list: CredentialConfig[]) {
      sets.push(list.map((c) => c.secret));
      size = list.length;
      return { added: list.length, removed: 0, changed: 0, size };
    },
  };
}

function setup(name: string, text: string) {
  const dir = path.join(tmp.dir, name);
  const file = path.join(dir, 'tokens.txt');
  mkdirSync(dir, { recursive: true });
  writeFileSync(file, text);
  const config = parseConfig({ request: { url: 'https://api.example.com/items/{id}' }, auth: { type: 'header', tokensFile: file } }, { env: { vars: {} } });
  return { file, read: () => readCredentialSet(config, { vars: {} }) };
}

describe('watchCredentials', () => {
  it('takes a file rewritten in place only once it holds still: a half-written token is never swapped in', async () => {
    const { file, read } = setup('half', 'tok-a\n');
    const target = holder();
    const w = watchCredentials({ file, read, target, logger: pino({ level: 'silent' }), pollMs: 60_000, sighup: false });
    try {
      await w.check();
      expect(target.sets).toEqual([['tok-a']]);
      // A writer caught half-way: the second token's first bytes, the rest 30 ms later.
      writeFileSync(file, 'tok-a\ntok-');
      const checking = w.check();
      await new Promise((r) => setTimeout(r, 30));
      writeFileSync(file, 'tok-a\ntok-bbbb\n');
      await checking;
      await w.check();
      expect(target.sets).toEqual([['tok-a'], ['tok-a', 'tok-bbbb']]);
    } finally {
      w.close();
    }
  });

  it('one SIGHUP listener for every watcher of the process (a pull with many workers), removed with the last', async () => {
    const { file, read } = setup('hup', 'tok-h\n');
    const before = process.listenerCount('SIGHUP');
    const targets = Array.from({ length: 12 }, () => holder());
    const watches = targets.map((target) => watchCredentials({ file, read, target, logger: pino({ level: 'silent' }), pollMs: 60_000 }));
    try {
      await Promise.all(watches.map((w) => w.check()));
      expect(process.listenerCount('SIGHUP')).toBe(before + 1);
      process.emit('SIGHUP', 'SIGHUP');
      await new Promise((r) => setTimeout(r, 50));
      await Promise.all(watches.map((w) => w.check()));
      // Each watcher re-read the file on the one signal (a forced re-read hands the set over again).
      for (const t of targets) expect(t.sets.length).toBeGreaterThanOrEqual(2);
    } finally {
      for (const w of watches) w.close();
    }
    expect(process.listenerCount('SIGHUP')).toBe(before);
  });
});
