/**
 * Why one output line cannot become JSON text, or undefined: JSON.stringify throws RangeError for data
 * nested deeper than the call stack (JSON.parse takes any depth) or longer than a string can be. The
 * sinks write lines as JSON, so such a line fails its ID (body_too_large) instead of every write of its
 * step. Costs one JSON.stringify of the line: called only once a step's write threw a RangeError.
 */
export function unwritableLine(line: unknown): string | undefined {
  try {
    JSON.stringify(line);
    return undefined;
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    return `this ID's data cannot be written as JSON (${err.message}): it is nested too deeply or too large`;
  }
}
