#!/usr/bin/env node
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { InputError, PullqError } from '../errors.js';
import { isRedisConnectionError } from '../redis/redis-retry.js';

// Commands load lazily: `enqueue` and `status` never pay for got or the worker.

const USAGE = `usage: pullq <command> [options]

  enqueue <ids-file|-> [--run NAME]                 stream IDs into the queue and return
  worker [--concurrency N] [--metrics-port N]       one worker replica, until SIGTERM/SIGINT (/metrics, /healthz, /readyz on N)
  pull <ids-file|-> [--run NAME] [--workers N]      enqueue, work until complete, print a summary
  status [--run NAME] [--json | --watch]            counts, completion, ETA, credential health; --watch redraws every second
  check [--id ID] [--json]                          one probe request per credential: valid, rejected, forbidden or exhausted
  credentials [--json]                              the pool as the fleet sees it now: each credential's name, kind, source, state
  plan <ids-file|-> [--latency-ms N] [--json]       no requests: how long the run takes at the budgets, useful replicas
  schedule <ids-file> --cron EXPR [--name NAME] [--tz TZ] | --list | --remove NAME
                                                    cron-triggered pulls, fired once per tick by the worker replicas
  login [--client NAME]                             OAuth2 authorization code (PKCE): prints the URL to open, stores the
                                                    refresh token for the fleet; exit 1 refused, 2 no answer in 5 min
  dashboard [--port 3000] [--host 127.0.0.1]        web page for the fleet (runs, credentials, throughput), Bull Board
                                                    under /queues; $PULLQ_DASHBOARD_PASSWORD: basic auth on every route

every command: --config PATH (else $PULLQ_CONFIG, else ./pullq.config.json), --verbose, --help
exit codes: 0 complete, 1 fatal error, 2 the run could not complete`;

const GLOBAL = {
  config: { type: 'string' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

function parse<O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O, positionals: number) {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { ...GLOBAL, ...options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new InputError(`${(err as Error).message.replace(/\. To specify a positional.*$/s, '')}\n${USAGE}`);
  }
  if (parsed.positionals.length > positionals) throw new InputError(`unexpected argument ${JSON.stringify(parsed.positionals[positionals])}\n${USAGE}`);
  return parsed;
}

function positiveInt(name: string, value: string | undefined, min = 1): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new InputError(`--${name} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
  return n;
}

/** A TCP port to listen on; 0 picks a free one. */
function port(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isInteger(n) || n > 65535) throw new InputError(`--port must be an integer from 0 to 65535 (0: any free port), got ${JSON.stringify(value)}`);
  return n;
}

function source(positionals: string[], command: string): string {
  const s = positionals[0];
  if (s === undefined) throw new InputError(`pullq ${command}: give an IDs file, or - for stdin`);
  return s;
}

/** Runs one pullq command and returns its exit code (SPEC: 0 complete, 1 fatal, 2 incomplete). */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return command === undefined ? 1 : 0;
  }
  switch (command) {
    case 'enqueue': {
      const { values, positionals } = parse(rest, { run: { type: 'string' } }, 1);
      if (values.help) return help();
      return (await import('./commands/enqueue-command.js')).enqueueCommand(source(positionals, command), values);
    }
    case 'worker': {
      const { values } = parse(rest, { concurrency: { type: 'string' }, 'metrics-port': { type: 'string' } }, 0);
      if (values.help) return help();
      const metricsPort = positiveInt('metrics-port', values['metrics-port']);
      if (metricsPort !== undefined && metricsPort > 65535) throw new InputError(`--metrics-port must be 1-65535, got ${metricsPort}`);
      return (await import('./commands/worker-command.js')).workerCommand({ ...values, concurrency: positiveInt('concurrency', values.concurrency), metricsPort });
    }
    case 'pull': {
      const { values, positionals } = parse(rest, { run: { type: 'string' }, workers: { type: 'string' } }, 1);
      if (values.help) return help();
      return (await import('./commands/pull-command.js')).pullCommand(source(positionals, command), { ...values, workers: positiveInt('workers', values.workers, 0) });
    }
    case 'status': {
      const { values } = parse(rest, { run: { type: 'string' }, json: { type: 'boolean' }, watch: { type: 'boolean', short: 'w' } }, 0);
      if (values.help) return help();
      return (await import('./commands/status-command.js')).statusCommand(values);
    }
    case 'check': {
      const { values } = parse(rest, { id: { type: 'string' }, json: { type: 'boolean' } }, 0);
      if (values.help) return help();
      return (await import('./commands/check-command.js')).checkCommand(values);
    }
    case 'credentials': {
      const { values } = parse(rest, { json: { type: 'boolean' } }, 0);
      if (values.help) return help();
      return (await import('./commands/credentials-command.js')).credentialsCommand(values);
    }
    case 'schedule': {
      const { values, positionals } = parse(rest, { cron: { type: 'string' }, name: { type: 'string' }, tz: { type: 'string' }, list: { type: 'boolean' }, remove: { type: 'string' } }, 1);
      if (values.help) return help();
      return (await import('./commands/schedule-command.js')).scheduleCommand(positionals[0], values);
    }
    case 'plan': {
      const { values, positionals } = parse(rest, { 'latency-ms': { type: 'string' }, json: { type: 'boolean' } }, 1);
      if (values.help) return help();
      return (await import('./commands/plan-command.js')).planCommand(source(positionals, command), { ...values, latencyMs: positiveInt('latency-ms', values['latency-ms']) });
    }
    case 'login': {
      const { values } = parse(rest, { client: { type: 'string' } }, 0);
      if (values.help) return help();
      return (await import('./commands/login-command.js')).loginCommand(values);
    }
    case 'dashboard': {
      const { values } = parse(rest, { port: { type: 'string' }, host: { type: 'string' } }, 0);
      if (values.help) return help();
      if (values.host !== undefined && values.host.trim() === '') throw new InputError('--host must not be empty (e.g. 127.0.0.1, or 0.0.0.0 for every interface)');
      const flags = { ...values, port: port(values.port) };
      return (await import('./commands/dashboard-command.js')).dashboardCommand(flags);
    }
    default:
      throw new InputError(`unknown command ${JSON.stringify(command)}\n${USAGE}`);
  }
}

function help(): number {
  process.stdout.write(`${USAGE}\n`);
  return 0;
}

const verbose = process.argv.includes('--verbose');
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Open handles (keep-alive sockets, Redis reconnect timers) must not keep a finished command alive.
    setTimeout(() => process.exit(code), 200).unref();
  },
  (err: unknown) => {
    if (err instanceof PullqError) {
      process.stderr.write(`pullq: ${err.message}\n`);
      if (verbose && err.cause) process.stderr.write(`${(err.cause as Error).stack ?? String(err.cause)}\n`);
      process.exit(err.exitCode);
    }
    if (isRedisConnectionError(err)) {
      // The connection dropped for longer than pullq rides out: nothing is lost, the command can be run again.
      process.stderr.write(`pullq: lost the connection to Redis and it did not come back (${(err as Error).message}); check Redis and run the command again: it resumes where it stopped\n`);
      if (verbose) process.stderr.write(`${(err as Error).stack}\n`);
      process.exit(1);
    }
    process.stderr.write(`pullq: unexpected error: ${(err as Error)?.message ?? String(err)}${verbose ? `\n${(err as Error)?.stack}` : ' (run with --verbose for details)'}\n`);
    process.exit(1);
  },
);
