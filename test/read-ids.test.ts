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
  for await (const chunk of readIds(source, 2, stdin)) out.push(...chunk);
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

  it('a missing file is one clear InputError', async () => {
    await expect(all(path.join(tmp.dir, 'nope.txt'))).rejects.toThrow(InputError);
    await expect(all(path.join(tmp.dir, 'nope.txt'))).rejects.toThrow(/IDs file not found: .*nope\.txt/);
  });
});
