import { describe, expect, it } from 'vitest';
import { decodeKey, encodeRowKey, headerOf, idsFormatOf, parseJsonRow, rowOfFields, splitCsvLine, splitTsvLine } from '../src/ids/id-key.js';

describe('IDs files with columns', () => {
  it.each([
    ['ids.txt', 'lines'], ['-', 'lines'], ['ids', 'lines'], ['ids.CSV', 'csv'], ['a/b.tsv', 'tsv'], ['x.jsonl', 'jsonl'], ['x.ndjson', 'jsonl'],
  ])('%s is read as %s', (file, format) => {
    expect(idsFormatOf(file)).toBe(format);
  });

  it.each([
    ['a,b,c', ['a', 'b', 'c']],
    [' a , b ', ['a', 'b']],
    ['"a,b","say ""hi""",c', ['a,b', 'say "hi"', 'c']],
    ['a,,', ['a', '', '']],
    ['"x" , y', ['x', 'y']],
  ])('csv %j', (line, fields) => {
    expect(splitCsvLine(line)).toEqual({ ok: true, fields });
  });

  it.each([['"open', 'does not end'], ['"a"b,c', 'text after'], ['a"b', 'quote inside']])('csv %j is refused (%s)', (line, why) => {
    const f = splitCsvLine(line);
    expect(f.ok).toBe(false);
    expect(!f.ok && f.reason).toContain(why);
  });

  it('tsv splits on tabs only', () => {
    expect(splitTsvLine('a b\tc,d\t"e"')).toEqual({ ok: true, fields: ['a b', 'c,d', '"e"'] });
  });

  it('header: must name id, no empty or twice-named column', () => {
    expect(headerOf({ ok: true, fields: ['id', ' org '] })).toEqual({ ok: true, header: ['id', 'org'] });
    expect(headerOf({ ok: true, fields: ['org'] })).toMatchObject({ ok: false, reason: 'has no "id" column' });
    expect(headerOf({ ok: true, fields: ['id', 'id'] })).toMatchObject({ ok: false, reason: 'names column "id" twice' });
    expect(headerOf({ ok: true, fields: ['id', ''] })).toMatchObject({ ok: false });
  });

  it('rows under a header: short rows lack columns, long rows are refused', () => {
    expect(rowOfFields(['id', 'org'], { ok: true, fields: ['1', 'a'] })).toEqual({ ok: true, row: { id: '1', org: 'a' } });
    expect(rowOfFields(['id', 'org'], { ok: true, fields: ['1'] })).toEqual({ ok: true, row: { id: '1' } });
    expect(rowOfFields(['id', 'org'], { ok: true, fields: ['1', 'a', 'b'] })).toMatchObject({ ok: false, id: '1' });
  });

  it.each([
    ['{"id": "1", "org": "a"}', { ok: true, row: { id: '1', org: 'a' } }],
    ['{"id": 7, "on": true, "gone": null}', { ok: true, row: { id: '7', on: 'true' } }],
    ['{"org": "a"}', { ok: false, reason: 'has no "id" column' }],
    ['[1]', { ok: false, reason: 'is not a JSON object' }],
    ['{"id": ', { ok: false, reason: 'is not valid JSON' }],
    ['{"id": "1", "o": {"x": 1}}', { ok: false, reason: 'column "o" is not a string or a number', id: '1' }],
  ])('json line %s', (line, want) => {
    expect(parseJsonRow(line)).toEqual(want);
  });

  it('a row is stored canonically (the whole row is the dedupe key) and decodes back', () => {
    const a = encodeRowKey({ org: 'a', id: '1', date: 'd' });
    expect(a).toBe(encodeRowKey({ date: 'd', id: '1', org: 'a' }));
    expect(a).not.toBe(encodeRowKey({ date: 'e', id: '1', org: 'a' }));
    expect(decodeKey(a)).toEqual({ id: '1', columns: { date: 'd', id: '1', org: 'a' } });
    expect(decodeKey('plain {"id"}')).toEqual({ id: 'plain {"id"}', columns: null });
  });
});
