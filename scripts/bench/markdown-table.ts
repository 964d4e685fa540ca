const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** A GitHub-flavoured Markdown table (pipes in cells escaped). */
export function markdownTable(columns: string[], rows: string[][]): string {
  return [`| ${columns.map(cell).join(' | ')} |`, `|${columns.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)].join('\n');
}
