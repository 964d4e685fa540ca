import { Writable } from 'node:stream';

/**
 * A Writable that says it is a TTY and keeps every byte written, and a small
 * terminal that replays them: printable characters (wrapping at `columns`),
 * CR, LF, ESC[2K (erase line), ESC[nF (up n rows, column 0), ESC[nA (up n
 * rows), ESC[J (erase to the end of the screen). Enough to see what a user
 * sees after pullq's redraws. Any other escape fails the replay.
 */
export class FakeTty extends Writable {
  readonly isTTY = true;
  bytes = '';
  constructor(readonly columns = 80) {
    super({ decodeStrings: false });
  }
  override _write(chunk: string | Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.bytes += chunk.toString();
    done();
  }
  /** The rows on the screen after replaying every byte (trailing spaces trimmed). */
  screen(): string[] {
    return replay(this.bytes, this.columns);
  }
}

export function replay(bytes: string, columns: number): string[] {
  const rows: string[][] = [[]];
  let row = 0;
  let col = 0;
  let pendingWrap = false;
  const at = (r: number) => (rows[r] ??= []);
  for (let i = 0; i < bytes.length; i++) {
    const ch = bytes[i]!;
    if (ch === '\r') {
      col = 0;
      pendingWrap = false;
    } else if (ch === '\n') {
      // A tty's output processing (onlcr) turns LF into CR LF.
      row++;
      col = 0;
      pendingWrap = false;
      at(row);
    } else if (ch === '\x1b') {
      const m = /^\x1b\[(\d*)([A-Za-z])/.exec(bytes.slice(i));
      if (!m) throw new Error(`unknown escape at ${i}: ${JSON.stringify(bytes.slice(i, i + 8))}`);
      const n = m[1] === '' ? undefined : Number(m[1]);
      switch (m[2]) {
        case 'K':
          if (n !== 2) throw new Error(`ESC[${m[1]}K not emulated`);
          rows[row] = [];
          break;
        case 'F':
          row = Math.max(0, row - (n ?? 1));
          col = 0;
          break;
        case 'A':
          row = Math.max(0, row - (n ?? 1));
          break;
        case 'J':
          if ((n ?? 0) !== 0) throw new Error(`ESC[${m[1]}J not emulated`);
          at(row).length = col;
          rows.length = row + 1;
          break;
        default:
          throw new Error(`ESC[${m[1]}${m[2]} not emulated`);
      }
      pendingWrap = false;
      i += m[0].length - 1;
    } else {
      if (pendingWrap) {
        row++;
        col = 0;
        pendingWrap = false;
      }
      const r = at(row);
      while (r.length < col) r.push(' ');
      r[col] = ch;
      if (col === columns - 1) pendingWrap = true;
      else col++;
    }
  }
  return rows.map((r) => r.join('').trimEnd());
}
