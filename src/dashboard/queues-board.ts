import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Queue } from 'bullmq';
import { Router, type RequestHandler } from 'express';
import { scrubDeep } from './scrub-deep.js';

/** Where Bull Board is mounted. */
export const QUEUES_PATH = '/queues';

/** Bull Board's page asks Google for its fonts; the board must load nothing from elsewhere (it falls back to system fonts). */
const REMOTE_FONTS = /<link\b[^>]*fonts\.googleapis\.com[^>]*>\s*/gi;

/** Bull Board renders with inline styles; scripts and everything else come from this origin only. */
const BOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * Bull Board (the raw BullMQ view: jobs, states, workers) for one queue, read
 * only: its mutating routes refuse (readOnlyMode), and this router answers 405
 * to any method but GET/HEAD before they are reached. Every API answer of the
 * board is scrubbed of the pool's secrets (an after-hook, which also covers
 * failedReason, stack traces and logs, where `setFormatter` reaches only
 * data, returnValue, name and progress).
 */
export function queuesBoard(queue: Queue, secrets: () => readonly string[]): RequestHandler {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(QUEUES_PATH);
  createBullBoard({
    queues: [new BullMQAdapter(queue, { readOnlyMode: true, allowRetries: false, description: 'pullq batches: one job per batch of IDs (read only)' })],
    serverAdapter,
    options: {
      uiConfig: { boardTitle: 'pullq queues', miscLinks: [{ text: 'pullq dashboard', url: '../' }] },
      handlerHooks: {
        after: (_context, result) => (result.body === undefined ? result : { ...result, body: scrubDeep(JSON.parse(JSON.stringify(result.body)) as typeof result.body, secrets()) }),
      },
    },
  });
  const router = Router();
  router.use((req, res, next) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.status(405).set('allow', 'GET, HEAD').json({ error: 'the queue view is read only' });
      return;
    }
    res.set('content-security-policy', BOARD_CSP);
    const send = res.send.bind(res);
    res.send = (body?: unknown) => send(typeof body === 'string' && body.includes('<link') ? body.replace(REMOTE_FONTS, '') : body);
    next();
  });
  router.use(serverAdapter.getRouter() as RequestHandler);
  return router;
}
