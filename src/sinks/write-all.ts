import type { FileHandle } from 'node:fs/promises';

/** FileHandle.write may write less than asked: go on until all is written. */
export async function writeAll(fh: FileHandle, data: Buffer): Promise<void> {
  for (let at = 0; at < data.length; ) {
    const { bytesWritten } = await fh.write(data, at, data.length - at);
    at += bytesWritten;
  }
}
