// One emulator per array directory. The directory holds the array's NV image and disk images; a
// second emulator on it would load, rewrite and truncate them under the first one's feet. So the
// emulator takes `<dir>/sanbox.lock` before it opens anything of the array (NV, media, trace), and
// a second one refuses, naming the first.
//
// The lock file is created with O_EXCL and holds who owns it: pid, host name and start time. A lock
// whose owner is gone (same host, pid not running: a crash or a kill -9) is stale and is taken
// over, with a message. A lock held from another host cannot be checked and is never taken over.
// A live pid is trusted to be the owner; if it is not (the pid was reused), the message says which
// file to remove.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export const LOCK_FILE = 'sanbox.lock';

export interface LockOwner {
  pid: number;
  host: string;
  /** ISO time the owner started. */
  started: string;
}

export class ArrayDirectoryInUse extends Error {
  constructor(message: string, readonly owner?: LockOwner) {
    super(message);
    this.name = 'ArrayDirectoryInUse';
  }
}

export class DirectoryLock {
  private released = false;

  private constructor(readonly file: string, readonly owner: LockOwner) {}

  /**
   * Takes the lock of `dir` for `array` (its name, for messages), creating the directory if need
   * be. Throws ArrayDirectoryInUse when a live owner holds it; `log` hears about stale locks taken over.
   */
  static acquire(dir: string, array: string, log: (line: string) => void = () => undefined): DirectoryLock {
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, LOCK_FILE);
    const me: LockOwner = { pid: process.pid, host: os.hostname(), started: new Date().toISOString() };
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const fd = fs.openSync(file, 'wx');
        try { fs.writeSync(fd, `${JSON.stringify(me)}\n`); } finally { fs.closeSync(fd); }
        return new DirectoryLock(file, me);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const text = readOrEmpty(file);
      const owner = parseOwner(text);
      if (!owner) {
        // A file we cannot read as a lock: a start that died between creating and writing it, or
        // something else. It is only taken over when empty (the former).
        if (text.trim() !== '') throw new ArrayDirectoryInUse(`array ${array}: ${file} exists and is not a sanbox lock; remove it if no sanbox uses ${dir}`);
      } else if (owner.host !== me.host) {
        throw new ArrayDirectoryInUse(`array ${array}: ${dir} is in use by sanbox pid ${owner.pid} on host ${owner.host} since ${owner.started} `
          + `(${file}); stop it there, or remove the lock file if it is not running`, owner);
      } else if (alive(owner.pid)) {
        throw new ArrayDirectoryInUse(`array ${array}: ${dir} is in use by sanbox pid ${owner.pid} since ${owner.started} `
          + `(${file}); stop it first (Ctrl-C), or remove the lock file if pid ${owner.pid} is not a sanbox`, owner);
      } else {
        log(`array ${array}: taking over the lock of sanbox pid ${owner.pid} (started ${owner.started}), which is no longer running`);
      }
      // Stale: removed only if it is still the lock we judged (another starter may have replaced it).
      if (readOrEmpty(file) === text) fs.rmSync(file, { force: true });
    }
    throw new ArrayDirectoryInUse(`array ${array}: could not take ${file}: another sanbox is starting on ${dir}`);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    // Only our own lock is removed (a takeover after a hang would have replaced it).
    if (parseOwner(readOrEmpty(this.file))?.pid === this.owner.pid) fs.rmSync(this.file, { force: true });
  }
}

function readOrEmpty(file: string): string {
  try { return fs.readFileSync(file, 'utf8'); } catch { return ''; }
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const o = JSON.parse(text) as Partial<LockOwner>;
    if (Number.isInteger(o.pid) && typeof o.host === 'string' && typeof o.started === 'string') return o as LockOwner;
  } catch { /* not a lock */ }
  return undefined;
}

/** Whether a process with this pid runs on this host (EPERM: it runs, as another user). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
