// pullq as a library: `import { createPullq, parseConfig } from 'pullq'`.
// The CLI (src/cli) is a thin caller of what is exported here.

export { parseConfig, configSchema, type Config, type Budget, type CredentialConfig } from './config.js';
export { PullqError, ConfigError, InputError, RedisUnavailableError, RunAbortedError, CommitUnknownError, ListenError } from './errors.js';
export { RunFinalizedError, type Sink, type ResultLine, type FailedLine, type Summary, type FinalizeFence } from './sinks/sink.js';
export { FileSink, type FileSinkOptions } from './sinks/file-sink.js';
export { PostgresSink } from './sinks/postgres-sink.js';
export { sinkConformanceCases, type SinkConformanceOptions, type SinkConformanceCase, type SinkFixture, type SinkOutput } from './sinks/sink-conformance.js';
