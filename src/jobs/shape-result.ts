/** A successful answer as a `transform` hook sees it: the decoded body (JSON parsed, else text) and the response's facts. */
export interface PullqResponse {
  id: string;
  status: number;
  headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The decoded body: parsed JSON, text for other bodies, null for an empty one. */
  data: unknown;
}

/**
 * Shapes what is stored for an ID (API only): its return value becomes the
 * result line's `data`. Throwing (or rejecting) fails the ID with
 * `transform_failed`; the message is the error's, so keep secrets out of it.
 */
export type Transform = (response: PullqResponse, id: string) => unknown;

/**
 * Keeps only the fields named by dot paths (`output.select`), in their
 * places: ["name", "owner.login"] turns {name, size, owner: {login, id}} into
 * {name, owner: {login}}. An array is shaped item by item; a missing field is
 * left out; a body that is not JSON (text) is kept as it is.
 */
export function selectFields(data: unknown, paths: readonly (readonly string[])[]): unknown {
  if (Array.isArray(data)) return data.map((item) => selectFields(item, paths));
  if (data === null || typeof data !== 'object') return data;
  const out: Record<string, unknown> = {};
  for (const path of paths) pick(data as Record<string, unknown>, path, 0, out);
  return out;
}

function pick(from: Record<string, unknown>, path: readonly string[], at: number, into: Record<string, unknown>): void {
  const key = path[at]!;
  if (!Object.hasOwn(from, key)) return;
  const value = from[key];
  if (at === path.length - 1) {
    into[key] = value;
    return;
  }
  if (Array.isArray(value)) {
    const prior = Array.isArray(into[key]) ? (into[key] as unknown[]) : undefined;
    into[key] = value.map((item, i) => {
      if (item === null || typeof item !== 'object' || Array.isArray(item)) return item;
      const target = prior?.[i] !== undefined && typeof prior[i] === 'object' ? (prior[i] as Record<string, unknown>) : {};
      pick(item as Record<string, unknown>, path, at + 1, target);
      return target;
    });
    return;
  }
  if (value === null || typeof value !== 'object') return;
  const target = into[key] !== null && typeof into[key] === 'object' && !Array.isArray(into[key]) ? (into[key] as Record<string, unknown>) : {};
  pick(value as Record<string, unknown>, path, at + 1, target);
  into[key] = target;
}
