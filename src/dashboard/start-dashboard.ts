import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Queue } from 'bullmq';
import type { RequestHandler } from 'express';
import type { CredentialPool } from '../auth/credential-pool.js';
import type { Config } from '../config.js';
import { ConfigError, ListenError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { RedisClient } from '../redis/connect-redis.js';
import type { RunStore } from '../runs/run-store.js';
import { createDashboardApp } from './dashboard-app.js';
import { DashboardStateReader } from './dashboard-state.js';
import { queuesBoard } from './queues-board.js';

/** Host names and addresses that reach this machine only. */
const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

/** True when `host` (a --host value) is reachable from this machine only. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  return LOOPBACK_NAMES.has(h) || /^127(\.\d{1,3}){3}$/.test(h) || h.endsWith('.localhost');
}

export interface DashboardOptions {
  config: Config;
  redis: RedisClient;
  store: RunStore;
  queue: Queue;
  logger: Logger;
  /** The queue's credentials (their health, labels and secrets to scrub). */
  pool: CredentialPool;
  host: string;
  /** 0: any free port (the URL returned names it). */
  port: number;
  password?: string;
  /** See DashboardAppOptions: `open` before the password check (probes), `routers` after it (/metrics). */
  open?: RequestHandler[];
  routers?: RequestHandler[];
}

export interface RunningDashboard {
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Refuses an empty password: basic auth with "" lets anyone in who sends an empty one, and a password given
 * turns the loopback host check off, so "" would serve the fleet to any page a browser opens.
 */
export function checkDashboardPassword(password: string | undefined): void {
  if (password === '') throw new ConfigError('the dashboard password is empty: give a non-empty password, or none (no basic auth; on loopback only localhost names are answered)');
}

/** Starts the dashboard's HTTP server; throws a ListenError with one clear line when it cannot listen. */
export async function startDashboard(o: DashboardOptions): Promise<RunningDashboard> {
  checkDashboardPassword(o.password);
  const pool = o.pool;
  const secrets = () => pool.secrets();
  const reader = new DashboardStateReader({ queueName: o.config.queue, redis: o.redis, store: o.store, queue: o.queue, pool });
  const loopback = isLoopback(o.host);
  const app = createDashboardApp({
    readState: () => reader.read(),
    secrets,
    queues: queuesBoard(o.queue, secrets),
    password: o.password,
    allowedHosts: loopback && o.password === undefined ? new Set([...LOOPBACK_NAMES, o.host.toLowerCase()]) : null,
    open: o.open,
    routers: o.routers,
    onError: (err) => o.logger.warn({ err: { message: (err as Error)?.message } }, `dashboard: cannot read the state from Redis (${(err as Error)?.message ?? String(err)})`),
  });
  const server = createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(err, o.host, o.port)));
    server.listen(o.port, o.host, () => resolve());
  });
  server.removeAllListeners('error');
  server.on('error', (err) => o.logger.error({ err: { message: err.message } }, `dashboard server error: ${err.message}`));
  const { port } = server.address() as AddressInfo;
  const shownHost = o.host.includes(':') && !o.host.startsWith('[') ? `[${o.host}]` : o.host;
  return {
    url: `http://${shownHost}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // The page polls over keep-alive connections: without this, close waits for them to time out.
        server.closeAllConnections();
      }),
  };
}

function listenError(err: NodeJS.ErrnoException, host: string, port: number): ListenError {
  const where = `${host}:${port}`;
  switch (err.code) {
    case 'EADDRINUSE':
      return new ListenError(`cannot listen on ${where}: the port is in use (choose another with --port)`, { cause: err });
    case 'EACCES':
      return new ListenError(`cannot listen on ${where}: not allowed (ports below 1024 need privileges; choose another with --port)`, { cause: err });
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new ListenError(`cannot listen on ${where}: ${host} is not an address of this machine (try --host 127.0.0.1, or 0.0.0.0 for every interface)`, { cause: err });
    default:
      return new ListenError(`cannot listen on ${where}: ${err.code ?? err.message}`, { cause: err });
  }
}
