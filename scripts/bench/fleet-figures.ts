import type { ApiStats } from './start-api-process.js';

export interface WindowFigures {
  seconds: number;
  /** Requests the API accepted within budget in the window. */
  accepted: number;
  /** accepted per second ÷ the sum of the budgets. */
  utilization: number;
  requests: number;
  rejected: number;
  /** rejected ÷ requests. */
  rejectedShare: number;
  /** Most requests accepted in any 100 ms of the window, all credentials (a smooth 200/s is 20). */
  peak100ms: number;
}

/**
 * Utilization and rejections of one time window [from, to) of a fleet run, as
 * the API saw them. The window is shortened to whole seconds: a 1 s sliding
 * window bounds the requests of any k-second interval by k budgets, but not
 * those of a fraction of a second (a burst may fall into it).
 */
export function windowFigures(stats: ApiStats, from: number, rawTo: number, budgetPerSec: number, wholeSeconds = true): WindowFigures {
  const to = wholeSeconds && rawTo - from >= 1000 ? from + Math.floor((rawTo - from) / 1000) * 1000 : rawTo;
  let accepted = 0;
  for (const times of Object.values(stats.acceptedAt)) for (const t of times) if (t >= from && t < to) accepted++;
  let requests = 0;
  let rejected = 0;
  stats.log.t.forEach((t, i) => {
    if (t < from || t >= to) return;
    requests++;
    if (stats.log.status[i] === 429) rejected++;
  });
  const inWindow: number[] = [];
  for (const times of Object.values(stats.acceptedAt)) for (const t of times) if (t >= from && t < to) inWindow.push(t);
  inWindow.sort((a, b) => a - b);
  let peak100ms = 0;
  for (let i = 0, j = 0; j < inWindow.length; j++) {
    while (inWindow[j]! - inWindow[i]! >= 100) i++;
    peak100ms = Math.max(peak100ms, j - i + 1);
  }
  const seconds = Math.max(0.001, (to - from) / 1000);
  return { seconds, accepted, peak100ms, utilization: accepted / seconds / budgetPerSec, requests, rejected, rejectedShare: requests > 0 ? rejected / requests : 0 };
}
