import { createWriteStream } from 'node:fs';
import http from 'node:http';
import { got } from 'got';
import pLimit from 'p-limit';

// The overhead baseline: a plain p-limit + got loop over N IDs, no queue.
// argv[2] is {url, n, concurrency, output, prefix} as JSON.

const o = JSON.parse(process.argv[2] ?? '{}') as { url: string; n: number; concurrency: number; output: string; prefix: string };
const out = createWriteStream(o.output);
const client = got.extend({
  retry: { limit: 0 },
  throwHttpErrors: false,
  timeout: { request: 30_000 },
  agent: { http: new http.Agent({ keepAlive: true, maxSockets: o.concurrency, maxFreeSockets: o.concurrency }) },
});
const limit = pLimit(o.concurrency);
await Promise.all(
  Array.from({ length: o.n }, (_, i) =>
    limit(async () => {
      const id = `${o.prefix}${i}`;
      const res = await client(o.url.replace('{id}', encodeURIComponent(id)));
      let data: unknown = res.body;
      try {
        data = JSON.parse(res.body);
      } catch {
        // keep the text
      }
      out.write(`${JSON.stringify({ id, status: res.statusCode, fetchedAt: new Date().toISOString(), data })}\n`);
    }),
  ),
);
await new Promise<void>((resolve) => out.end(resolve));
process.exit(0);
