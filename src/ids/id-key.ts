import path from 'node:path';

// IDs files with several columns (issue #13): CSV or TSV with a header line, or
// JSON lines. A row's key is the whole row: it is what dedupe sees and what is
// stored in Redis, so a worker can rebuild every column. Pure.

/** An ID as a worker uses it: the `id` column, and the whole row when the IDs file has columns. */
export interface IdKey {
  id: string;
  /** Every column of the row (`id` included), or null for a one-ID-per-line file. */
  columns: Readonly<Record<string, string>> | null;
}

/**
 * Starts the stored form of a row: U+0001 then the row as JSON with sorted
 * keys. A plain ID can never start with it (a control character makes an ID
 * invalid_id, and invalid IDs never reach a batch), so the two never mix up.
 */
export const ROW_KEY_MARK = '\u0001';

/** How an IDs file is read: by its extension (`-`, stdin, is one ID per line). */
export type IdsFormat = 'lines' | 'csv' | 'tsv' | 'jsonl';

/** `.csv`, `.tsv`, `.jsonl` / `.ndjson` (any case) have columns; anything else is one ID per line. */
export function idsFormatOf(source: string): IdsFormat {
  if (source === '-') return 'lines';
  switch (path.extname(source).toLowerCase()) {
    case '.csv':
      return 'csv';
    case '.tsv':
      return 'tsv';
    case '.jsonl':
    case '.ndjson':
      return 'jsonl';
    default:
      return 'lines';
  }
}

/** The stored (Redis, dedupe) form of a row: canonical, so the same row always gives the same key. */
export function encodeRowKey(row: Readonly<Record<string, string>>): string {
  const sorted: Record<string, string> = {};
  for (const k of Object.keys(row).sort()) sorted[k] = row[k]!;
  return ROW_KEY_MARK + JSON.stringify(sorted);
}

/** A stored ID back as the worker needs it. */
export function decodeKey(stored: string): IdKey {
  if (!stored.startsWith(ROW_KEY_MARK)) return { id: stored, columns: null };
  const columns = JSON.parse(stored.slice(1)) as Record<string, string>;
  return { id: columns['id'] ?? '', columns };
}

/** A line of a columned file as fields, or why it cannot be read. */
export type Fields = { ok: true; fields: string[] } | { ok: false; reason: string };

/**
 * One CSV line (RFC 4180 quoting: a quoted field may hold commas and `""`
 * for a quote, but no line break: one row is one line). Unquoted fields are trimmed.
 */
export function splitCsvLine(line: string): Fields {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    while (line[i] === ' ' || line[i] === '\t') i++;
    if (line[i] === '"') {
      let value = '';
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q === -1) return { ok: false, reason: 'has a quoted field that does not end' };
        value += line.slice(i, q);
        if (line[q + 1] === '"') {
          value += '"';
          i = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      while (line[i] === ' ' || line[i] === '\t') i++;
      if (i < line.length && line[i] !== ',') return { ok: false, reason: 'has text after a quoted field' };
      fields.push(value);
    } else {
      const comma = line.indexOf(',', i);
      const end = comma === -1 ? line.length : comma;
      const value = line.slice(i, end).trim();
      if (value.includes('"')) return { ok: false, reason: 'has a quote inside an unquoted field' };
      fields.push(value);
      i = end;
    }
    if (i >= line.length) return { ok: true, fields };
    i++; // the comma
  }
}

/** One TSV line (IANA text/tab-separated-values: no quoting; a field holds no tab). */
export function splitTsvLine(line: string): Fields {
  return { ok: true, fields: line.split('\t') };
}

/** A row, or why the line cannot be one. */
export type Row = { ok: true; row: Record<string, string> } | { ok: false; reason: string; id?: string };

/** A CSV/TSV line under its header: missing trailing fields are missing columns; extra fields are an error. */
export function rowOfFields(header: readonly string[], f: Fields): Row {
  if (!f.ok) return f;
  if (f.fields.length > header.length) return { ok: false, reason: `has ${f.fields.length} fields, the header ${header.length}`, id: f.fields[header.indexOf('id')] };
  const row: Record<string, string> = {};
  f.fields.forEach((v, i) => (row[header[i]!] = v));
  return row['id'] === undefined ? { ok: false, reason: 'has no "id" field' } : { ok: true, row };
}

/**
 * One JSON line: an object whose values are strings, numbers or booleans
 * (kept as their text); null stands for a missing column. It must have "id".
 */
export function parseJsonRow(line: string): Row {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { ok: false, reason: 'is not valid JSON' };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return { ok: false, reason: 'is not a JSON object' };
  const row: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (v === null) continue;
    if (typeof v === 'string') row[k] = v;
    else if (typeof v === 'number' || typeof v === 'boolean') row[k] = String(v);
    else return { ok: false, reason: `column "${k}" is not a string or a number`, id: typeof (value as { id?: unknown }).id === 'string' ? (value as { id: string }).id : undefined };
  }
  return row['id'] === undefined ? { ok: false, reason: 'has no "id" column' } : { ok: true, row };
}

/** The header of a CSV/TSV file as column names, or why it is unusable (then the file is refused). */
export function headerOf(f: Fields): { ok: true; header: string[] } | { ok: false; reason: string } {
  if (!f.ok) return f;
  const header = f.fields.map((h) => h.trim());
  if (header.some((h) => h === '')) return { ok: false, reason: 'has an empty column name' };
  const dup = header.find((h, i) => header.indexOf(h) !== i);
  if (dup !== undefined) return { ok: false, reason: `names column "${dup}" twice` };
  if (!header.includes('id')) return { ok: false, reason: 'has no "id" column' };
  return { ok: true, header };
}
