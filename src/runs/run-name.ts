/** A UTC timestamp fit for a run name: 20261122T174630Z. */
export function utcStamp(ms: number = Date.now()): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

/** A file's base name (no extension) reduced to run-name characters, or `fallback` when nothing is left. */
export function runLabel(source: string, fallback: string): string {
  const base = source.replace(/^.*[\\/]/, '').replace(/\.[^.]*$/, '');
  return base.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 60) || fallback;
}

/** A run's name when none is given: the IDs file's base name ("stdin", or "ids" for IDs from code) and a UTC timestamp. */
export function defaultRunName(source: string, now = new Date()): string {
  return `${runLabel(source, 'run')}-${utcStamp(now.getTime())}`;
}
