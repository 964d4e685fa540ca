import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../src/errors.js';
import { countLines, readIds } from '../src/ids/read-ids.js';
import { tempDir } from './helpers/test-env.js';

const tmp = tempDir('ids');
afterAll(() => tmp.remove());

async function all(source: string, stdin?: Readable): Promise<string[]> {
  const out: string[] = [];
  for await (const chunk of readIds(source, 2, stdin)) out.push(...chunk.ids);
  return out;
}

describe('readIds', () => {
  it('strips BOM, CRLF, whitespace; skips blanks and comments', async () => {
    const file = path.join(tmp.dir, 'a.txt');
    writeFileSync(file, '\uFEFF12345\r\n  a:b  \r\n\r\n# note\nx y\n\tü\na/b');
    expect(await all(file)).toEqual(['12345', 'a:b', 'x y', 'ü', 'a/b']);
    expect(await countLines(file)).toBe(7);
  });

  it('reads stdin with "-"', async () => {
    expect(await all('-', Readable.from(['1\n2\n', '3']))).toEqual(['1', '2', '3']);
  });

  it('an empty file yields nothing', async () => {
    const file = path.join(tmp.dir, 'empty.txt');
    writeFileSync(file, '');
    expect(await all(file)).toEqual([]);
  });

  it('numbers lines, flags invalid UTF-8, keeps NUL bytes for the URL check to refuse', async () => {
    const file = path.join(tmp.dir, 'bytes.txt');
    writeFileSync(file, Buffer.concat([Buffer.from('ok\n\n# c\nbad'), Buffer.from([0xff, 0xfe]), Buffer.from('\nnul\0x\nfine ü\n')]));
    const chunks = [];
    for await (const c of readIds(file, 100)) chunks.push(c);
    expect(chunks).toHaveLength(1);
    const c = chunks[0]!;
    expect(c.ids).toEqual(['ok', 'bad\uFFFD\uFFFD', 'nul\0x', 'fine ü']);
    expect(c.lines).toEqual([1, 4, 5, 6]);
    expect([...c.problems]).toEqual([[1, 'is not valid UTF-8']]);
  });

  it('refuses a line over 1 MiB, naming it; a 1 MB line is still read', async () => {
    const big = path.join(tmp.dir, 'big.txt');
    writeFileSync(big, `a\n${'x'.repeat(1_000_000)}\nb\n`);
    expect((await all(big)).map((x) => x.length)).toEqual([1, 1_000_000, 1]);
    const huge = path.join(tmp.dir, 'huge.txt');
    writeFileSync(huge, `a\nb\n${'x'.repeat(2 * 1024 * 1024)}\n`);
    await expect(all(huge)).rejects.toThrow(/huge\.txt: line 3 is longer than 1048576 bytes/);
  });

  it('a missing file is one clear InputError', async () => {
    await expect(all(path.join(tmp.dir, 'nope.txt'))).rejects.toThrow(InputError);
    await expect(all(path.join(tmp.dir, 'nope.txt'))).rejects.toThrow(/IDs file not found: .*nope\.txt/);
  });
});
