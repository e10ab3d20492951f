import { open } from 'node:fs/promises';

/**
 * fsync a directory, so that the entries just created, renamed or removed in it survive a crash:
 * fsync on a file makes its data durable, not its name (fsync(2): "an explicit fsync() on a file
 * descriptor for the directory is also needed"). Every temp-file-then-rename write ends with it.
 */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
