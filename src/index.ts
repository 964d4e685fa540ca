// pullq as a library: `import { createPullq, parseConfig } from 'pullq'`.
// The CLI (src/cli) is a thin caller of what is exported here.

export { createPullq, type Pullq, type PullqOptions, type PullqWorker, type EnqueueOptions, type WorkerOptions, type WatchOptions, type PullqEvents, type CredentialRef } from './api/create-pullq.js';
export type { PullOptions, PullResult } from './api/pull-run.js';
export type { RunReport } from './api/run-report.js';
export type { CheckReport, Probe } from './api/check-credentials.js';
export type { CredentialInfo } from './api/list-credentials.js';
export type { CredentialSource } from './auth/credential.js';
export type { Plan } from './api/plan-run.js';
export type { LoginOptions, LoginResult } from './api/login-client.js';
export { LoginError, LoginTimeoutError } from './auth/kinds/oauth2-authorization-code.js';
export type { ScheduleInfo, ScheduleOptions } from './api/schedules.js';
export type { DashboardHandle, DashboardOptions } from './api/serve-dashboard.js';
export type { EnqueueResult } from './runs/enqueue-run.js';
export type { RunStatus } from './runs/run-store.js';
export type { CredentialHealth, CredentialUsage } from './auth/credential-pool.js';
export type { IdsInput } from './ids/ids-input.js';
export type { Transform, PullqResponse } from './jobs/shape-result.js';

export { parseConfig, loadConfig, configSchema, type Config, type ConfigInput, type Budget, type CredentialConfig, type CustomSigner, type SignerRequest } from './config.js';
export { CredentialRefusedError, CredentialUnavailableError } from './auth/credential-errors.js';
export { CustomSignerError } from './auth/kinds/custom-credential.js';
export { PullqError, ConfigError, InputError, RedisUnavailableError, RunAbortedError, CommitUnknownError, ListenError } from './errors.js';
export { ERROR_CODES, type ErrorCode } from './policy/error-codes.js';
export { FinalizeLostError } from './runs/finalize-run.js';
export { RunFinalizedError, type Sink, type ResultLine, type FailedLine, type Summary, type FinalizeFence } from './sinks/sink.js';
export { FileSink, type FileSinkOptions } from './sinks/file-sink.js';
export type { ValidatorEntry, Validators } from './sinks/validators.js';
export { PostgresSink } from './sinks/postgres-sink.js';
export type { Logger } from './logger.js';
export { sinkConformanceCases, type SinkConformanceOptions, type SinkConformanceCase, type SinkFixture, type SinkOutput } from './sinks/sink-conformance.js';
