import { mkdir, open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * One mirror per storage directory. A second mirror on the same storage would wipe the first's
 * temp files at start (live downloads) and race it on evictions; `hoist mirror verify` would
 * delete a running mirror's downloads. So a mirror holds `<storage>/mirror.pid` while it runs.
 * A file whose process is gone (a crash, `kill -9`) is stale and is taken over.
 */
export const LOCK_FILE = 'mirror.pid';

export class StorageLockedError extends Error {
  readonly code = 'STORAGE_LOCKED';
  readonly pid: number;
  constructor(storage: string, pid: number) {
    super(
      `storage ${storage} is in use by a running mirror (pid ${pid}); stop it first or use another --storage`,
    );
    this.name = 'StorageLockedError';
    this.pid = pid;
  }
}

/** The pid of a live mirror holding `storage`, or undefined. */
export async function storageHolder(storage: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(join(storage, LOCK_FILE), 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number(text.trim());
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  return isAlive(pid) ? pid : undefined;
}

/** Takes the storage for this process; resolves the function that lets it go. */
export async function lockStorage(storage: string): Promise<() => Promise<void>> {
  await mkdir(storage, { recursive: true });
  const path = join(storage, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, 'wx');
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      let released = false;
      return async () => {
        if (released) return;
        released = true;
        await unlink(path).catch(() => {});
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = await storageHolder(storage);
      if (holder !== undefined && holder !== process.pid) throw new StorageLockedError(storage, holder);
      if (holder === process.pid) throw new StorageLockedError(storage, holder);
      await unlink(path).catch(() => {}); // stale: its process is gone
    }
  }
  throw new Error(`could not take ${path}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
