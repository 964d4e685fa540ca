// A custom request signer (auth type "custom", library only), for an API that wants each request signed with
// an HMAC: X-Key-Id names the key, X-Timestamp is the time in ms, and X-Signature is the hex HMAC-SHA256 of
//
//   METHOD \n path?query \n timestamp \n body
//
// under the key's secret. pullq calls sign() for every request it sends (each page, each retry) with a copy of
// the whole request, so every try gets a fresh timestamp and a signature over exactly what goes on the wire.
// The headers sign() adds are stripped if a redirect leads to another origin; every string of a credential
// object counts as a secret (never logged, never stored).
//
//   API_URL=https://api.example.com API_KEY_ID=k1 API_SECRET=… node dist/examples/hmac-signer.js ./out 1 2 3

import { createHmac } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { createPullq, PullqError, type CustomSigner, type SignerRequest } from 'pullq';

/** The text signed: method, the path and query as sent (WHATWG URL serialization, as the HTTP client sends them), timestamp, body. */
export function textToSign(request: SignerRequest, timestamp: string): string {
  const url = new URL(request.url);
  return `${request.method}\n${url.pathname}${url.search}\n${timestamp}\n${request.body ?? ''}`;
}

/** Signs a request with the credential's `keyId` and `secret`; changes the copy it gets in place. */
export const hmacSigner: CustomSigner = (request, credential) => {
  const { keyId, secret } = credential;
  // A message without the secret: pullq logs it (one line) and retries the try.
  if (typeof keyId !== 'string' || typeof secret !== 'string') throw new Error('each credential needs a string keyId and secret');
  const timestamp = String(Date.now());
  request.headers['x-key-id'] = keyId;
  request.headers['x-timestamp'] = timestamp;
  request.headers['x-signature'] = createHmac('sha256', secret).update(textToSign(request, timestamp)).digest('hex');
};

async function main(argv: string[]): Promise<number> {
  const [dir, ...ids] = argv;
  const env = process.env;
  if (dir === undefined || ids.length === 0 || !env['API_URL'] || !env['API_KEY_ID'] || !env['API_SECRET']) {
    process.stderr.write('usage: API_URL=… API_KEY_ID=… API_SECRET=… hmac-signer <out-dir> <id>...\n');
    return 1;
  }
  const pullq = createPullq({
    redis: { url: env['REDIS_URL'] ?? 'redis://127.0.0.1:6379' },
    queue: env['PULLQ_QUEUE'] ?? 'hmac-signer-example',
    // A POST with a JSON body and the ID in the query too: the signature covers all of it.
    request: { url: `${env['API_URL']}/items/{id}?q={id}`, method: 'POST', body: { id: '{id}' } },
    auth: { type: 'custom', sign: hmacSigner, credentials: [{ keyId: env['API_KEY_ID'], secret: env['API_SECRET'], name: 'hmac-1' }] },
    sink: { type: 'file', dir },
  });
  try {
    const r = await pullq.pull(ids);
    if (!r.complete) {
      process.stderr.write(`run ${r.run} not complete: ${r.reason}\n`);
      return 2;
    }
    const s = r.status!;
    process.stdout.write(`run ${r.run} complete: ${s.total} IDs, ${s.succeeded} succeeded, ${s.failed} failed → ${r.location}\n`);
    return 0;
  } finally {
    await pullq.close();
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`hmac-signer: ${err instanceof PullqError ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
