import { mkdirSync, openSync, symlinkSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { FileSink } from '../src/sinks/file-sink.js';
import { PostgresSink } from '../src/sinks/postgres-sink.js';
import type { ValidatorEntry } from '../src/sinks/validators.js';
import { buildValidatorsFile, validatorLine, ValidatorsFile } from '../src/sinks/validators-file.js';
import { PG_URL, postgresAnswers } from './helpers/postgres.js';
import { tempDir } from './helpers/test-env.js';

const pgAvailable = await postgresAnswers();

// The file sink's validators store (src/sinks/validators-file.ts) under output.carryUnchanged with
// large bodies: what one lookup reads, and what happens when the store cannot be read.

const tmp = tempDir('vfile');
afterAll(() => tmp.remove());

/** Writes entries as a validators part (JSON lines) and returns its path. */
function part(name: string, entries: ValidatorEntry[]): string {
  const file = path.join(tmp.dir, name);
  writeFileSync(file, entries.map((e) => `${validatorLine(e)}\n`).join(''));
  return file;
}

const BODY = 64 * 1024;
const big = (i: number): ValidatorEntry => ({ id: `id-${i}`, etag: `"e${i}"`, data: { n: i, text: String.fromCharCode(97 + (i % 26)).repeat(BODY) }, hasData: true });

describe('validators file lookups', () => {
  it('with large carried bodies, a lookup reads the wanted IDs\' data and not their bucket neighbours\'', async () => {
    const entries = Array.from({ length: 400 }, (_, i) => big(i));
    const target = path.join(tmp.dir, 'big.pqv');
    expect(await buildValidatorsFile(target, [part('big-a.jsonl', entries.slice(0, 200)), part('big-b.jsonl', entries.slice(200))])).toBe(400);
    const file = await ValidatorsFile.open(target);
    try {
      const wanted = [3, 77, 150, 222, 399].map((i) => entries[i]!);
      const found = await file.lookup([...wanted.map((e) => e.id), 'nope']);
      expect([...found.keys()].sort()).toEqual(wanted.map((e) => e.id).sort());
      for (const e of wanted) expect(found.get(e.id)).toEqual(e);
      // Each wanted body once, plus the small index entries of its bucket: not ~8 bodies per ID.
      expect(file.bytesRead).toBeLessThan(wanted.length * (BODY + 4096));
      // A lookup of every ID reads each body once.
      file.bytesRead = 0;
      const all = await file.lookup(entries.map((e) => e.id));
      expect(all.size).toBe(400);
      expect(file.bytesRead).toBeLessThan(400 * (BODY + 1024));
    } finally {
      await file.close();
    }
  });

  it('entries without data, unicode IDs and both validators read back exactly', async () => {
    const entries: ValidatorEntry[] = Array.from({ length: 3000 }, (_, i) => ({
      id: i % 7 === 0 ? `ü "q" ${i}\\x` : `small-${i}`,
      ...(i % 2 === 0 ? { etag: `W/"e${i}"` } : {}),
      ...(i % 3 === 0 || i % 2 === 1 ? { lastModified: 'Sun, 01 Mar 2026 03:00:00 GMT' } : {}),
      ...(i % 5 === 0 ? { data: i % 10 === 0 ? null : { n: i, s: '😀' }, hasData: true } : {}),
    }));
    const target = path.join(tmp.dir, 'small.pqv');
    expect(await buildValidatorsFile(target, [part('small.jsonl', entries)])).toBe(3000);
    const file = await ValidatorsFile.open(target);
    try {
      const found = await file.lookup(entries.map((e) => e.id));
      expect(found.size).toBe(3000);
      for (const e of entries) expect(found.get(e.id)).toEqual(e);
    } finally {
      await file.close();
    }
  });
});

describe('validators files of the earlier format', () => {
  it('a PQVALID1 file (data inline in each line) is still read: a series keeps one until its next run completes', async () => {
    const entries: ValidatorEntry[] = [{ id: 'a', etag: '"1"' }, { id: 'b', lastModified: 'Sun, 01 Mar 2026 03:00:00 GMT', data: { x: 1 }, hasData: true }, { id: 'c', etag: '"3"', data: null, hasData: true }];
    // One bucket (8 entries or fewer): its lines, the index [0, end], the footer.
    const lines = Buffer.from(entries.map((e) => `${validatorLine(e)}\n`).join(''), 'utf8');
    const index = Buffer.from(new Float64Array([0, lines.length]).buffer);
    const footer = Buffer.alloc(32);
    footer.write('PQVALID1', 0, 'latin1');
    footer.writeDoubleLE(1, 8);
    footer.writeDoubleLE(lines.length, 16);
    footer.writeDoubleLE(entries.length, 24);
    const target = path.join(tmp.dir, 'v1.pqv');
    writeFileSync(target, Buffer.concat([lines, index, footer]));
    const file = await ValidatorsFile.open(target);
    try {
      const found = await file.lookup(['a', 'b', 'c', 'd']);
      expect(found.size).toBe(3);
      for (const e of entries) expect(found.get(e.id)).toEqual(e);
    } finally {
      await file.close();
    }
  });
});

describe('validators that cannot be read are reported', () => {
  it('a validators part that exists but cannot be read fails the build, naming it (a missing one is skipped)', async () => {
    const loop = path.join(tmp.dir, 'loop.jsonl');
    symlinkSync(path.join(tmp.dir, 'loop2.jsonl'), loop);
    symlinkSync(loop, path.join(tmp.dir, 'loop2.jsonl'));
    const good = part('good.jsonl', [{ id: 'a', etag: '"1"' }]);
    await expect(buildValidatorsFile(path.join(tmp.dir, 'loop.pqv'), [good, loop, path.join(tmp.dir, 'missing.jsonl')])).rejects.toThrow(/loop\.jsonl/);
    expect(await buildValidatorsFile(path.join(tmp.dir, 'skip.pqv'), [good, path.join(tmp.dir, 'missing.jsonl')])).toBe(1);
  });

  it('a corrupt validators file fails the lookup with an error naming the file and what to do', async () => {
    const target = path.join(tmp.dir, 'corrupt.pqv');
    await buildValidatorsFile(target, [part('corrupt.jsonl', Array.from({ length: 50 }, (_, i) => ({ id: `c${i}`, etag: `"${i}"` })))]);
    // Garbage over the start of the file: the first buckets' entries.
    const fd = openSync(target, 'r+');
    writeSync(fd, Buffer.from('\u0000garbage{{{'), 0, 11, 0);
    closeSync(fd);
    const file = await ValidatorsFile.open(target);
    try {
      await expect(file.lookup(Array.from({ length: 50 }, (_, i) => `c${i}`))).rejects.toThrow(/corrupt\.pqv.*(delete|remove)/);
    } finally {
      await file.close();
    }
  });

  it('FileSink: a series directory that cannot be read fails the lookup instead of passing for "no validators"', async () => {
    const dir = path.join(tmp.dir, 'sink');
    mkdirSync(path.join(dir, '.validators'), { recursive: true });
    // A file where the series directory should be: readdir fails with ENOTDIR.
    writeFileSync(path.join(dir, '.validators', 'q.items'), 'not a directory');
    const sink = new FileSink(dir);
    try {
      await expect(sink.lookupValidators('q.items', ['1'])).rejects.toThrow(/q\.items/);
      expect((await sink.lookupValidators('q.other', ['1'])).size).toBe(0);
    } finally {
      await sink.close();
    }
  });
});

describe.skipIf(!pgAvailable)('PostgreSQL validators lookups', () => {
  it('a batch of 350 IDs with carried data is looked up in bounded queries: every entry found, exactly', async () => {
    const table = `pullq_vl_${Math.random().toString(36).slice(2, 10)}`;
    const sink = new PostgresSink(PG_URL, table);
    try {
      const entries = Array.from({ length: 350 }, (_, i) => ({ id: `p-${i}`, etag: `"e${i}"`, data: { n: i, s: 'ü'.repeat(100) }, hasData: true }));
      await sink.writeValidators('items-20260301T030000Z', 'b0-s0-0000', entries);
      await sink.publishValidators('items-20260301T030000Z', 'q.items', ['b0-s0-0000']);
      const found = await sink.lookupValidators('q.items', [...entries.map((e) => e.id), 'nope']);
      expect(found.size).toBe(350);
      for (const e of entries) expect(found.get(e.id)).toEqual(e);
    } finally {
      await sink.close();
      const db = new pg.Client({ connectionString: PG_URL });
      await db.connect();
      for (const t of ['', '_runs', '_vparts', '_validators']) await db.query(`DROP TABLE IF EXISTS "${table}${t}"`);
      await db.end();
    }
  });
});
