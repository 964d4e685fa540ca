/**
 * What one process has seen of a credential's `remaining` / `reset` over
 * several responses, to learn a window no header states (the limit/remaining/
 * reset triples and the draft 7 dictionary give a quota but no window).
 */
export interface WindowObservation {
  /** Largest time-to-reset seen, ms. */
  maxResetMs: number;
  /** When the window seen last ends (epoch ms), and what was left in it. */
  resetAt: number;
  remaining: number;
  /** Times a new window was seen to begin. */
  rollovers: number;
  /** Resets came as epoch seconds (they read up to a second long), not as delta seconds. */
  epochSeconds: boolean;
}

/** A reset end that moves later by more than this, with `remaining` not lower, is a new window. */
const ROLLOVER_SHIFT_MS = 250;
const DAY_MS = 86_400_000;

/**
 * Folds one response into the observation. Pure; see test/learn-window.test.ts.
 * A window begins when the reset moves later while `remaining` did not drop
 * (within one fixed window the reset stays put and `remaining` falls).
 */
export function observeWindow(prev: WindowObservation | undefined, remaining: number, resetInMs: number, nowMs: number, epochSeconds = false): WindowObservation {
  const resetAt = nowMs + resetInMs;
  const rolled = prev !== undefined && resetAt > prev.resetAt + ROLLOVER_SHIFT_MS && remaining >= prev.remaining;
  return {
    maxResetMs: Math.max(prev?.maxResetMs ?? 0, resetInMs),
    resetAt,
    remaining,
    rollovers: (prev?.rollovers ?? 0) + (rolled ? 1 : 0),
    epochSeconds,
  };
}

/**
 * The window learned so far, or undefined before a new window was seen to
 * begin (until then the first reset is all there is, and the caller guesses).
 * Right after a window begins, its time-to-reset is the whole window: the
 * largest seen, in whole seconds: delta seconds rounded up (an API rounds the
 * wait up), an epoch in seconds rounded down (it reads up to a second long).
 */
export function learnedWindowMs(obs: WindowObservation | undefined): number | undefined {
  if (!obs || obs.rollovers === 0 || obs.maxResetMs <= 0) return undefined;
  const s = obs.epochSeconds ? Math.floor(obs.maxResetMs / 1000) : Math.ceil(obs.maxResetMs / 1000);
  return Math.min(DAY_MS, Math.max(1000, s * 1000));
}
