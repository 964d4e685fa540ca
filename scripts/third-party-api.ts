import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { rateLimit } from 'express-rate-limit';
import Fastify from 'fastify';
import fastifyRateLimit from '@fastify/rate-limit';

/**
 * An API whose rate limiting is done by widely used middleware from npm that
 * we did not write, keyed per token (the `authorization` header), for tests
 * and benchmarks of "does pullq learn what real limiters send". pullq's
 * config names no budget: it has to learn each one from the headers.
 *
 * Header modes, as each package emits them:
 *   erl-draft6   express-rate-limit standardHeaders 'draft-6': RateLimit-Policy: 10;w=1 + RateLimit-Limit/-Remaining/-Reset (delta s)
 *   erl-draft7   express-rate-limit 'draft-7': RateLimit: limit=10, remaining=9, reset=1 + RateLimit-Policy: 10;w=1
 *   erl-draft8   express-rate-limit 'draft-8': RateLimit-Policy: "10-in-1sec"; q=10; w=1; pk=:…: + RateLimit: "10-in-1sec"; r=9; t=1
 *   erl-legacy   express-rate-limit legacyHeaders only: X-RateLimit-Limit/-Remaining/-Reset (epoch seconds) + Date
 *   fastify-x    @fastify/rate-limit defaults: x-ratelimit-limit/-remaining/-reset (delta seconds), retry-after on 429
 *   fastify-draft @fastify/rate-limit enableDraftSpec: ratelimit-limit/-remaining/-reset (delta seconds)
 * Every 429 carries Retry-After. Both packages' memory stores are fixed windows per key.
 */
export type ThirdPartyMode = 'erl-draft6' | 'erl-draft7' | 'erl-draft8' | 'erl-legacy' | 'fastify-x' | 'fastify-draft';

export const THIRD_PARTY_MODES: readonly ThirdPartyMode[] = ['erl-draft6', 'erl-draft7', 'erl-draft8', 'erl-legacy', 'fastify-x', 'fastify-draft'];

export interface ThirdPartyPolicy {
  limit: number;
  windowMs: number;
}

export interface ThirdPartyApiOptions {
  mode: ThirdPartyMode;
  /** One policy, or several at once (express-rate-limit draft-8 only: one limiter each, the headers list them all). */
  policies: ThirdPartyPolicy[];
  /** Added to every answer (ms). */
  latencyMs?: number;
}

export interface ThirdPartyApi {
  url: string;
  server: Server;
  /** Every item request: arrival time (ms), token, final status. */
  log: { t: number; token: string; status: number }[];
  close(): Promise<void>;
}

const tokenOf = (h: string | string[] | undefined): string => (Array.isArray(h) ? h[0] : h)?.replace(/^Bearer /, '') ?? '-';

/** Starts the API on 127.0.0.1, on a free port. */
export async function startThirdPartyApi(options: ThirdPartyApiOptions): Promise<ThirdPartyApi> {
  const log: ThirdPartyApi['log'] = [];
  const latency = options.latencyMs ?? 0;
  const item = (id: string) => ({ id, name: `item ${id}` });
  if (options.policies.length > 1 && options.mode !== 'erl-draft8') throw new Error('several policies at once: erl-draft8 only');

  if (options.mode.startsWith('erl-')) {
    const app = express();
    app.disable('x-powered-by');
    app.use((req, res, next) => {
      const t = Date.now();
      res.on('finish', () => log.push({ t, token: tokenOf(req.headers.authorization), status: res.statusCode }));
      next();
    });
    for (const p of options.policies) {
      app.use(
        rateLimit({
          windowMs: p.windowMs,
          limit: p.limit,
          standardHeaders: options.mode === 'erl-legacy' ? false : (options.mode.replace('erl-draft', 'draft-') as 'draft-6' | 'draft-7' | 'draft-8'),
          legacyHeaders: options.mode === 'erl-legacy',
          keyGenerator: (req) => tokenOf(req.headers.authorization),
          validate: false,
        }),
      );
    }
    app.get('/items/:id', (req, res) => {
      setTimeout(() => res.json(item(req.params.id)), latency);
    });
    const server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, log, close: () => new Promise((r) => server.close(() => r())) };
  }

  const app = Fastify({ logger: false });
  app.addHook('onRequest', async (req, reply) => {
    const t = Date.now();
    reply.raw.on('finish', () => log.push({ t, token: tokenOf(req.headers.authorization), status: reply.raw.statusCode }));
  });
  const p = options.policies[0]!;
  await app.register(fastifyRateLimit, {
    max: p.limit,
    timeWindow: p.windowMs,
    enableDraftSpec: options.mode === 'fastify-draft',
    keyGenerator: (req) => tokenOf(req.headers.authorization),
  });
  app.get<{ Params: { id: string } }>('/items/:id', async (req) => {
    if (latency > 0) await new Promise((r) => setTimeout(r, latency));
    return item(req.params.id);
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, server: app.server, log, close: () => app.close() };
}
