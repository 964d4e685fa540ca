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

/** JSON logs on stderr (stdout is for command output), secrets redacted. */
export function createLogger(level = 'info', destination: number = 2): Logger {
  return pino(
    { level, base: { pid: process.pid }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } },
    pino.destination({ fd: destination, sync: true }),
  );
}
