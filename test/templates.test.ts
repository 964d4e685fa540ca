import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startExampleApi, type ExampleApi } from '../scripts/example-api-server.js';
import { pullInProcess } from './helpers/pull-in-process.js';
import { tempDir, testConfig, uniqueQueue } from './helpers/test-env.js';

// Request templates (issue #13) end to end: a real API, Redis and workers.

const tmp = tempDir('templates');
afterAll(() => tmp.remove());
let api: ExampleApi | undefined;
afterEach(async () => {
  await api?.close();
  api = undefined;
});

async function setup(request: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  api = await startExampleApi({ auth: { type: 'header', tokens: ['tpl-token'] } });
  return testConfig({
    queue: uniqueQueue('tpl'),
    ...extra,
    request: { timeoutMs: 2000, ...request, url: `${api.url}${request['url'] as string}` },
    auth: { type: 'header', tokens: ['tpl-token'] },
    retry: { attempts: 3, baseDelayMs: 50, maxDelayMs: 200 },
    sink: { type: 'file', dir: tmp.dir },
    enqueue: { batchSize: 5 },
  });
}

const AWKWARD = ['12345', 'a"b', '"}], "evil": {"x": "', 'back\\slash', 'x y', 'ü', '😀', 'a/b'];

describe('request templates', () => {
  it('{id} in a header: inserted as text; the credential still rides in its own header', async () => {
    const config = await setup({ url: '/by-header', headers: { 'X-Item': '{id}', accept: 'application/json' } });
    const out = await pullInProcess(config, [...AWKWARD, 'bad\u0001id'], { run: 'header' });
    const fits = AWKWARD.filter((id) => id !== '😀');
    expect(out.results.map((r) => r.id).sort()).toEqual([...fits].sort());
    for (const r of out.results) expect(r.data).toMatchObject({ id: r.id });
    // A control character (CR/LF included) cannot go into a header, nor a character past Latin-1: invalid_id, never requested.
    expect(out.failed.map((f) => [f.id, f.error, f.message]).sort()).toEqual([
      ['bad\u0001id', 'invalid_id', 'line 9: ID contains a control character'],
      ['😀', 'invalid_id', 'line 7: ID has a character an HTTP header cannot carry (past U+00FF)'],
    ]);
    expect(api!.requestsById.get('😀')).toBeUndefined();
    for (const entry of api!.log) {
      expect(entry.headers['authorization']).toBe('Bearer tpl-token');
      expect(entry.headers['accept']).toBe('application/json');
    }
  });

  it('POST with a JSON body: the ID is a JSON string value, whatever it holds', async () => {
    const config = await setup({ url: '/search', method: 'POST', body: { query: { id: '{id}' }, note: 'looking for {id}!', limit: 1 } });
    const out = await pullInProcess(config, AWKWARD, { run: 'post' });
    expect(out.failed).toEqual([]);
    expect(out.results.map((r) => r.id).sort()).toEqual([...AWKWARD].sort());
    for (const r of out.results) {
      expect(r.data).toEqual({ id: r.id, name: `item ${r.id}`, received: { query: { id: r.id }, note: `looking for ${r.id}!`, limit: 1 } });
      expect(api!.requestsById.get(r.id)).toBe(1);
    }
    const posts = api!.log.filter((l) => l.url === '/search');
    expect(posts).toHaveLength(AWKWARD.length);
    for (const p of posts) {
      expect(p.method).toBe('POST');
      expect(p.headers['content-type']).toBe('application/json');
    }
  });

  it('CSV with a header: {org}, {id} and {date} into the path and the query; dedupe on the whole row; a missing column is invalid_id naming it', async () => {
    const config = await setup({ url: '/orgs/{org}/items/{id}?date={date}' });
    const csv = [
      'id,org,date',
      '1,acme,2024-01-01',
      '1,acme,2024-01-01', // the same row: fetched once
      '1,"Big, Co",2024-01-01', // the same id in another org: its own key
      'a/b,x y,2024-02-30&z=1',
      '2,acme', // no date
      '# a comment',
      '3,acme,2024-03-01,extra',
      '.,acme,2024-01-01', // a dot-segment in the path
    ].join('\n');
    const out = await pullInProcess(config, [], { run: 'csv', ext: '.csv', idsText: `${csv}\n` });
    const got = out.results.map((r) => [r.id, r.key, r.data]).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
    expect(got).toEqual([
      ['1', { id: '1', org: 'Big, Co', date: '2024-01-01' }, { id: '1', org: 'Big, Co', date: '2024-01-01' }],
      ['1', { id: '1', org: 'acme', date: '2024-01-01' }, { id: '1', org: 'acme', date: '2024-01-01' }],
      ['a/b', { id: 'a/b', org: 'x y', date: '2024-02-30&z=1' }, { id: 'a/b', org: 'x y', date: '2024-02-30&z=1' }],
    ].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))));
    const failed = Object.fromEntries(out.failed.map((f) => [f.id, [f.error, f.message]]));
    expect(failed).toEqual({
      '2': ['invalid_id', 'line 6: ID has no "date" column'],
      '3': ['invalid_id', 'line 8: row has 4 fields, the header 3'],
      '.': ['invalid_id', 'line 9: ID is a dot-segment (. or ..) and would change the path'],
    });
    expect(out.failed.find((f) => f.id === '2')!.key).toEqual({ id: '2', org: 'acme' });
    expect(out.summary).toMatchObject({ total: 6, succeeded: 3, failed: 3 });
    expect(api!.requestsByUrl.get('/orgs/acme/items/1?date=2024-01-01')).toBe(1);
  });

  it('TSV into a JSON body and a header', async () => {
    const config = await setup({ url: '/search', method: 'POST', headers: { 'x-org': 'org {org}' }, body: { query: { id: '{id}' }, org: '{org}' } });
    const out = await pullInProcess(config, [], { run: 'tsv', ext: '.tsv', idsText: 'org\tid\nacme\t1\nacme\t"2"\n' });
    expect(out.failed).toEqual([]);
    expect(out.results.map((r) => (r.data as { received: unknown }).received).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))).toEqual([
      { query: { id: '"2"' }, org: 'acme' },
      { query: { id: '1' }, org: 'acme' },
    ]);
    expect(api!.log.filter((l) => l.url === '/search').map((l) => l.headers['x-org'])).toEqual(['org acme', 'org acme']);
  });

  it('JSON lines: columns by name, numbers as their text; a row without a column it needs is invalid_id', async () => {
    const config = await setup({ url: '/orgs/{org}/items/{id}?date={date}' });
    const jsonl = ['{"id": 7, "org": "acme", "date": "d1"}', '{"id": "8", "org": "acme"}', '{"id": "9", "org": "acme", "date": null}', 'not json', '{"id": "7", "date": "d1", "org": "acme"}'].join('\n');
    const out = await pullInProcess(config, [], { run: 'jsonl', ext: '.jsonl', idsText: `${jsonl}\n` });
    expect(out.results.map((r) => [r.id, r.key])).toEqual([['7', { date: 'd1', id: '7', org: 'acme' }]]);
    expect(out.failed.map((f) => [f.id, f.message]).sort()).toEqual([
      ['8', 'line 2: ID has no "date" column'],
      ['9', 'line 3: ID has no "date" column'],
      ['not json', 'line 4: row is not valid JSON'],
    ]);
    expect(out.summary).toMatchObject({ total: 4, succeeded: 1, failed: 3 });
  });

  it('a column the file cannot have is refused before anything is enqueued', async () => {
    const config = await setup({ url: '/orgs/{org}/items/{id}' });
    await expect(pullInProcess(config, ['1', '2'], { run: 'lines' })).rejects.toThrow('the request templates use {org}, but');
    await expect(pullInProcess(config, [], { run: 'nocol', ext: '.csv', idsText: 'id,date\n1,d\n' })).rejects.toThrow(/the request templates use \{org\}, but the header line has no such column \(it has id, date\)/);
    await expect(pullInProcess(config, [], { run: 'noid', ext: '.csv', idsText: 'org\nacme\n' })).rejects.toThrow(/the header line \(line 1\) has no "id" column/);
  });
});
