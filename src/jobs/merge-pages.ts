import { valueAt } from '../policy/next-page.js';
import type { ResultLine } from '../sinks/sink.js';

/**
 * output.mode "id" (issue #13): the one results line of a paginated ID from
 * its page lines (any order; a page seen twice counts once). `data` is the
 * array of page bodies, or, with `itemsPath`, the pages' items in one array.
 * `status` and `fetchedAt` are the last page's.
 */
export function mergePages(pages: readonly ResultLine[], o: { id: string; key: Readonly<Record<string, string>> | null; truncated: boolean }, itemsPath: string | undefined): ResultLine {
  const byPage = new Map<number, ResultLine>();
  for (const p of pages) byPage.set(p.page ?? 0, p);
  const sorted = [...byPage.entries()].sort((a, b) => a[0] - b[0]).map(([, p]) => p);
  const last = sorted.at(-1);
  const data = itemsPath === undefined ? sorted.map((p) => p.data) : sorted.flatMap((p) => {
    const items = valueAt(p.data, itemsPath);
    return Array.isArray(items) ? (items as unknown[]) : [];
  });
  return {
    id: o.id,
    ...(o.key ? { key: { ...o.key } } : {}),
    pages: sorted.length,
    ...(o.truncated ? { truncated: true as const } : {}),
    status: last?.status ?? 200,
    fetchedAt: last?.fetchedAt ?? new Date().toISOString(),
    data,
  };
}
