/** What the status line needs of a stream: process.stderr, or a test's Writable. */
export interface TermStream {
  write(chunk: string): boolean;
  isTTY?: boolean;
  columns?: number;
}

/**
 * The one status line at the bottom of a terminal (`pull`'s progress), and
 * the way everything else gets past it: `print` clears the line, writes its
 * text (from column 0, ending in a newline) and draws the status line again
 * below it, in one write. On a stream that is not a TTY there is no status
 * line at all: `draw` and `clear` do nothing, `print` just writes.
 */
export interface StatusLine {
  /** True on a TTY: a status line can be drawn. */
  readonly live: boolean;
  /** Shows `text` as the status line (replacing the one shown). */
  draw(text: string): void;
  /** Takes the status line away (the cursor is left at column 0 of an empty line). */
  clear(): void;
  /** Writes a log line (or lines) above the status line. */
  print(text: string): void;
}

/** Erase the whole line, back to column 0. */
export const CLEAR_LINE = '\r\x1b[2K';

export function createStatusLine(stream: TermStream): StatusLine {
  const ended = (t: string) => (t.endsWith('\n') ? t : `${t}\n`);
  if (!stream.isTTY) {
    return { live: false, draw: () => undefined, clear: () => undefined, print: (t) => void stream.write(ended(t)) };
  }
  let shown: string | null = null;
  return {
    live: true,
    draw(text) {
      shown = fitLine(text, stream.columns);
      stream.write(CLEAR_LINE + shown);
    },
    clear() {
      if (shown === null) return;
      shown = null;
      stream.write(CLEAR_LINE);
    },
    print(text) {
      stream.write(shown === null ? ended(text) : CLEAR_LINE + ended(text) + shown);
    },
  };
}

/**
 * One row of a terminal `columns` wide, never wrapping: a wrapped status
 * line could not be erased by clearing one line. Cut with "…" when longer.
 */
export function fitLine(text: string, columns: number | undefined): string {
  const chars = [...text.replace(/[\r\n]+/g, ' ')];
  if (!columns || columns < 2 || chars.length < columns) return chars.join('');
  return `${chars.slice(0, columns - 2).join('')}…`;
}

/** How many terminal rows `text` takes on a terminal `columns` wide (long lines wrap). */
export function rowsOf(text: string, columns: number | undefined): number {
  const lines = (text.endsWith('\n') ? text.slice(0, -1) : text).split('\n');
  return lines.reduce((n, l) => n + (columns && columns > 0 ? Math.max(1, Math.ceil([...l].length / columns)) : 1), 0);
}

/**
 * A block of lines redrawn in place (`status --watch`): each `show` moves
 * the cursor back up over the previous block, erases to the end of the
 * screen and writes the new one. Not a TTY: each block is written after the
 * last, separated by a blank line (a log of snapshots).
 */
export function createBlockRedraw(stream: TermStream): { show(text: string): void } {
  let rows = 0;
  let first = true;
  return {
    show(text) {
      const block = text.endsWith('\n') ? text : `${text}\n`;
      if (!stream.isTTY) {
        stream.write(first ? block : `\n${block}`);
        first = false;
        return;
      }
      // ESC[nF: up n rows to column 0; ESC[J: erase from there to the end of the screen.
      stream.write(`${rows > 0 ? `\x1b[${rows}F` : '\r'}\x1b[J${block}`);
      rows = rowsOf(block, stream.columns);
    },
  };
}
