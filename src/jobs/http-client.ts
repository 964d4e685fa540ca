import http from 'node:http';
import https from 'node:https';
import { got, type Got } from 'got';
import { PLACEHOLDER_RE, type Config } from '../config.js';
import { redirectGuard } from './redirect-guard.js';

/**
 * The one got instance a worker process uses: keep-alive sockets sized to the
 * concurrency, a whole-request timeout, no got retries (pullq decides), no
 * throwing on HTTP status (the classifier decides), TLS checks on, and redirects
 * as request.redirects allows (src/jobs/redirect-guard.ts).
 */
export function createHttpClient(config: Config): Got {
  const maxSockets = config.worker.concurrency;
  return got.extend({
    method: config.request.method,
    headers: { 'user-agent': 'pullq/0.1', ...lowerKeys(config.request.headers) },
    timeout: { request: config.request.timeoutMs },
    retry: { limit: 0 },
    throwHttpErrors: false,
    followRedirect: config.request.redirects.follow,
    maxRedirects: config.request.redirects.max,
    hooks: { beforeRedirect: [redirectGuard(config.request.redirects)] },
    responseType: 'buffer',
    decompress: true,
    agent: {
      http: new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets }),
      https: new https.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets }),
    },
    https: { rejectUnauthorized: true },
  });
}

/** The fixed headers, lower-cased; templated ones ({id}, {column}) are set per request, rendered. */
function lowerKeys(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([, v]) => !new RegExp(PLACEHOLDER_RE.source).test(v)).map(([k, v]) => [k.toLowerCase(), v]));
}
