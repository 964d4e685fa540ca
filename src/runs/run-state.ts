import type { RunStatus } from './run-store.js';

export type RunState = 'enqueueing' | 'running' | 'writing output' | 'complete' | 'stopped';

/** The one word `pullq status` and the dashboard show for a run. */
export function runState(s: RunStatus): RunState {
  if (s.complete) return 'complete';
  if (s.aborted !== null) return 'stopped';
  if (s.done) return 'writing output';
  return s.sealed ? 'running' : 'enqueueing';
}
