import type { Config } from '../config.js';
import { FileSink } from './file-sink.js';
import { PostgresSink } from './postgres-sink.js';
import type { Sink } from './sink.js';

/** The sink the config names. */
export function createSink(config: Config): Sink {
  if (config.sink.type === 'file') return new FileSink(config.sink.dir, { compress: config.sink.compress });
  return new PostgresSink(config.sink.url, config.sink.table);
}
