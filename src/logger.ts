import { pino, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;

/**
 * Key paths that could hold a secret if someone logged a request or options
 * object by mistake. pullq itself never logs credentials; this is the net.
 */
export const REDACT_PATHS = [
  'token', 'password', 'secret', 'clientSecret', 'accessToken', 'access_token', 'authorization', 'Authorization',
  '*.token', '*.password', '*.secret', '*.clientSecret', '*.accessToken', '*.access_token', '*.authorization', '*.Authorization',
  'headers', '*.headers', 'options', '*.options', 'request', '*.request',
];

const LEVEL_NAMES: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warning', 50: 'error', 60: 'fatal' };

/**
 * Logs on stderr (stdout is for command output), secrets redacted. `json`:
 * pino JSON lines, for services (worker); otherwise one `pullq: warning: ...`
 * line per record, for commands a person runs (pull, enqueue, status).
 * `write` takes the human lines instead of stderr (`pull` prints them above
 * its progress line, src/cli/terminal-line.ts).
 */
export function createLogger(level = 'info', format: 'json' | 'human' = 'json', sink: { write?: (line: string) => void } = {}): Logger {
  const write = sink.write ?? ((line: string) => void process.stderr.write(line));
  const options = { level, base: { pid: process.pid }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } };
  if (format === 'json') return pino(options, pino.destination({ fd: 2, sync: true }));
  return pino(options, {
    write(line: string) {
      const { level: n, msg, time: _t, pid: _p, ...rest } = JSON.parse(line) as Record<string, unknown>;
      // Warnings and infos say it all in their message; errors and debug records keep their fields.
      const extra = Object.keys(rest).length && ((n as number) >= 50 || (n as number) <= 20) ? ` ${JSON.stringify(rest)}` : '';
      write(`pullq: ${LEVEL_NAMES[n as number] ?? 'log'}: ${String(msg)}${extra}\n`);
    },
  });
}
