import type { Config } from '../config.js';
import { ConfigError } from '../errors.js';
import { FileSink } from './file-sink.js';
import type { Sink } from './sink.js';

/** The sink the config names. */
export function createSink(config: Config): Sink {
  if (config.sink.type === 'file') return new FileSink(config.sink.dir);
  throw new ConfigError('sink.type: "postgres" is not available yet; use { "type": "file", "dir": "./out" }');
}
