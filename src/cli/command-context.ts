import { loadConfig, runtimeEnv, type Config } from '../config.js';
import { createLogger, type Logger } from '../logger.js';
import { validateRunName } from '../runs/run-store.js';
import { defaultRunName } from '../runs/run-name.js';
import { idsSourceLabel } from '../ids/ids-input.js';
import { createPullq, type Pullq } from '../api/create-pullq.js';

export interface GlobalFlags {
  config?: string;
  verbose?: boolean;
}

/**
 * The library object a command works through, with the config it loaded and
 * the logger it made. `brief`: a command a person waits on (fails within
 * seconds when Redis is away); `patient`: one that runs long (rides it out).
 */
export function openPullq(flags: GlobalFlags, options: { connection: 'patient' | 'brief'; defaultLogLevel: string; logFormat: 'json' | 'human'; write?: (line: string) => void }): { pullq: Pullq; config: Config; logger: Logger } {
  const env = runtimeEnv();
  const config = loadConfig(flags.config, env);
  const logger = createLogger(env.logLevel ?? (flags.verbose ? 'debug' : options.defaultLogLevel), options.logFormat, { write: options.write });
  return { pullq: createPullq(config, { logger, connection: options.connection }), config, logger };
}

/** `--run`, or the IDs file's base name ("stdin" for -) and a UTC timestamp. */
export function runNameFor(flag: string | undefined, source: string, now = new Date()): string {
  return flag !== undefined ? validateRunName(flag) : defaultRunName(idsSourceLabel(source), now);
}
