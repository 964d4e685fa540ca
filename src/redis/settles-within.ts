/**
 * Waits for `work` at most `ms`: true when it settled (resolved or rejected) in time, false when it had not
 * (it is left to end on its own; a later rejection is swallowed). For the steps of a shutdown that wait on a
 * Redis (or a database) that may never answer: a hung server (SIGSTOP, a partition) neither replies nor
 * drops the connection, so an await on it never ends.
 */
export async function settlesWithin(work: Promise<unknown> | undefined, ms: number): Promise<boolean> {
  if (work === undefined) return true;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, ms))));
  const settled = work.then(() => true as const, () => true as const);
  try {
    return await Promise.race([settled, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
