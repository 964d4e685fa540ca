import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExampleApi, type ExampleApi } from '../scripts/example-api-server.js';
import { spawnCli, type CliResult } from './helpers/cli.js';
import { spawnDashboard, type DashboardProcess } from './helpers/dashboard.js';
import { redisUrl, tearDown, tempDir, uniqueQueue } from './helpers/test-env.js';

// The dashboard in a real browser (issue #11, item 3): Debian's chromium,
// driven by playwright-core, watches a live pull against the example API.
// One token ("bravo") has a budget of 30 requests per 8 s at the API: it is
// refused and rests for seconds at a time, so the page must show it resting.
// Saves a screenshot to test-results/dashboard.png; with PULLQ_UPDATE_SCREENSHOT=1 it is the
// one the README shows (docs/dashboard.png).

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`dashboard-browser.test.ts skipped: no ${CHROMIUM} (apt-get install -y chromium; .ci/run installs it)`);

const TOKENS = ['browser-token-alpha-93e1', 'browser-token-bravo-5a70'];
const queue = uniqueQueue('dashb');
const tmp = tempDir('dashb');
let api: ExampleApi;
let dashboard: DashboardProcess | undefined;
let browser: Browser | undefined;
let pull: { done: Promise<CliResult> } | undefined;

beforeAll(async () => {
  if (!hasChromium) return;
  // ~70 IDs/s through 16 requests in flight at 200 ms each: 605 IDs take about 9 s.
  api = await startExampleApi({ auth: { type: 'header', tokens: TOKENS }, latencyMs: 200, budgets: { [TOKENS[1]!]: { requests: 30, perSeconds: 8 } } });
  writeFileSync(
    path.join(tmp.dir, 'pullq.config.json'),
    JSON.stringify({
      queue,
      request: { url: `${api.url}/items/{id}` },
      auth: { type: 'header', tokens: [{ token: TOKENS[0], name: 'alpha' }, { token: TOKENS[1], name: 'bravo' }] },
      retry: { baseDelayMs: 50, maxDelayMs: 500 },
    }),
  );
  const ids = [...Array.from({ length: 600 }, (_, i) => `item-${i}`), ...Array.from({ length: 5 }, (_, i) => `missing-${i}`)];
  writeFileSync(path.join(tmp.dir, 'ids.txt'), `${ids.join('\n')}\n`);
  const env = { REDIS_URL: redisUrl() };
  [dashboard, browser] = await Promise.all([
    spawnDashboard(['--port', '0'], { cwd: tmp.dir, env }),
    chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] }),
  ]);
});

afterAll(async () => {
  await browser?.close();
  await pull?.done;
  await dashboard?.stop();
  await tearDown({ api, queue, tmp });
});

describe.skipIf(!hasChromium)('the dashboard in headless Chromium', () => {
  it('follows a live pull: progress advances, a refused credential shows resting, the chart draws; then complete', async () => {
    const page = await browser!.newPage({ viewport: { width: 1280, height: 860 } });
    const offSite: string[] = [];
    const problems: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(dashboard!.url)) offSite.push(r.url());
    });
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(`${dashboard!.url}/`);
    await page.locator('#runs td.empty').waitFor();

    pull = spawnCli(['pull', 'ids.txt', '--run', 'browser-run'], { cwd: tmp.dir, env: { REDIS_URL: redisUrl() } });
    const row = page.locator('tr[data-run="browser-run"]');
    const finished = async () => Number((await row.count()) ? await row.getAttribute('data-finished') : 0);
    // Enqueueing and the first commit (a batch commits when done, or at a 5 s checkpoint) take longer on a busy machine.
    await expect.poll(finished, { timeout: 20_000, interval: 100 }).toBeGreaterThan(0);
    const first = await finished();
    const firstText = await row.locator('.progress-text').textContent();
    expect(firstText).toMatch(/^\d+ \/ 605 \(\d+%\)$/);
    expect(await row.getAttribute('data-state')).toBe('running');

    // bravo is refused at the API (30 per 8 s) and rests until its window frees.
    const bravo = page.locator('tr[data-credential="bravo"][data-state="resting"]');
    await bravo.waitFor({ timeout: 12_000 });
    expect(await bravo.locator('td.state').textContent()).toMatch(/^resting until \d\d:\d\d:\d\d \(\d+ s\)$/);
    expect(await page.locator('tr[data-credential="alpha"]').getAttribute('data-state')).toBe('ok');

    // The chart: a line with points per credential (and bravo's refusals as their own dashed series), risen off the zero line.
    const chart = page.locator('#chart');
    const readSeries = async () => {
      const series: { name: string; ys: number[] }[] = [];
      for (const line of await chart.locator('polyline').all()) {
        const points = ((await line.getAttribute('points')) ?? '').split(' ').filter(Boolean);
        series.push({ name: `${await line.getAttribute('data-credential')} ${await line.getAttribute('data-kind')}`, ys: points.map((pt) => Number(pt.split(',')[1])) });
      }
      return series;
    };
    const rise = async (name: string) => {
      const ys = (await readSeries()).find((s) => s.name === name)?.ys ?? [0];
      return Math.max(...ys) - Math.min(...ys);
    };
    await expect.poll(() => rise('alpha accepted'), { timeout: 12_000, interval: 200 }).toBeGreaterThan(20);
    expect(Number(await chart.getAttribute('data-requests'))).toBeGreaterThan(0);
    const series = await readSeries();
    expect(series.map((s) => s.name)).toEqual(expect.arrayContaining(['alpha accepted', 'bravo accepted']));
    for (const s of series) expect(s.ys.length).toBeGreaterThanOrEqual(2);

    const screenshot = process.env['PULLQ_UPDATE_SCREENSHOT'] === '1' ? path.resolve('docs/dashboard.png') : path.resolve('test-results/dashboard.png');
    mkdirSync(path.dirname(screenshot), { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: true });
    expect(statSync(screenshot).size).toBeGreaterThan(10_000);

    // Later reads (the page polls every 2 s): more IDs done, without a reload.
    await expect.poll(finished, { timeout: 20_000, interval: 100 }).toBeGreaterThan(first);
    expect(await row.locator('.progress-text').textContent()).not.toBe(firstText);

    const result = await pull.done;
    expect(result.code, result.stderr).toBe(0);
    await page.locator('tr[data-run="browser-run"][data-state="complete"]').waitFor({ timeout: 8_000 });
    expect(await row.locator('.progress-text').textContent()).toBe('605 / 605 (100%)');
    const text = await page.locator('body').textContent();
    for (const t of TOKENS) expect(text).not.toContain(t);
    expect(offSite).toEqual([]);
    expect(problems).toEqual([]);
  });
});
