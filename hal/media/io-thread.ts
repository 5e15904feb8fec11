// A file medium's I/O thread (docs/hal.md, Media): runs the medium's store calls (pread, pwrite,
// fdatasync) with blocking calls, in the order they were made, straight into and out of common
// memory. The calls a round makes go to the thread as one hand-off (a shared control block and an
// Atomics notify at the end of the round's JavaScript task), and their ends come back as one: on
// libuv's pool every call cost the array's thread a submission and a completion of its own, about
// 30 µs of its time each on a loaded 2-core host, and a destage of a slot with four dirty runs made
// four (docs/bench.md, "NBD"). The order is the order of the calls: a flush made after writes runs
// after them (the binding also starts a flush only once every request before it has ended).
import { Worker } from 'worker_threads';
import type { IoDone } from './store';

// Control block (Int32Array over a SharedArrayBuffer). SUBMIT and DONE are free-running call
// counts; call n lives in slot n % CALLS of the call table.
const C = {
  SUBMIT: 0, DONE: 1,
  CALL0: 4, CALL_INTS: 8, CALLS: 64,
  // a call: op, fd, buffer id, address, length, offset low, offset high, errno (0: done whole)
  OP: 0, FD: 1, BUF: 2, ADDR: 3, LENGTH: 4, OFF_LO: 5, OFF_HI: 6, ERRNO: 7,
  OP_READ: 1, OP_WRITE: 2, OP_FLUSH: 3,
} as const;
const INTS = C.CALL0 + C.CALLS * C.CALL_INTS;

/** Calls one thread may have queued or running at once (the binding keeps below it). */
export const MEDIUM_THREAD_CALLS = C.CALLS;

/** The thread's body: takes the calls submitted since the last batch and runs them in order. */
function ioThread(): void {
  const wt = require('worker_threads') as typeof import('worker_threads');
  const fsT = require('fs') as typeof import('fs');
  const K = wt.workerData.control as typeof C;
  const ctl = new Int32Array(wt.workerData.ctl as SharedArrayBuffer);
  const buffers = new Map<number, Uint8Array>();
  let done = Atomics.load(ctl, K.DONE);
  for (;;) {
    Atomics.wait(ctl, K.SUBMIT, done);
    const submitted = Atomics.load(ctl, K.SUBMIT);
    if (submitted === done) continue;
    for (let m = wt.receiveMessageOnPort(wt.parentPort!); m; m = wt.receiveMessageOnPort(wt.parentPort!)) {
      const msg = m.message as { id: number; buf?: SharedArrayBuffer };
      if (msg.buf) buffers.set(msg.id, new Uint8Array(msg.buf)); else buffers.clear();
    }
    while (done !== submitted) {
      const x = K.CALL0 + (done >>> 0) % K.CALLS * K.CALL_INTS;
      const op = ctl[x + K.OP];
      const fd = ctl[x + K.FD];
      const mem = buffers.get(ctl[x + K.BUF]);
      const addr = ctl[x + K.ADDR] >>> 0;
      const length = ctl[x + K.LENGTH] >>> 0;
      const offset = (ctl[x + K.OFF_LO] >>> 0) + (ctl[x + K.OFF_HI] >>> 0) * 2 ** 32;
      let errno = 0;
      try {
        if (op === K.OP_FLUSH) fsT.fdatasyncSync(fd);
        else if (!mem) errno = 22;
        else if (op === K.OP_WRITE) {
          for (let moved = 0; moved < length;) moved += fsT.writeSync(fd, mem, addr + moved, length - moved, offset + moved);
        } else {
          for (let moved = 0; moved < length;) {
            const n = fsT.readSync(fd, mem, addr + moved, length - moved, offset + moved);
            if (n === 0) { mem.fill(0, addr + moved, addr + length); break; } // past the end of a shorter file: zeros
            moved += n;
          }
        }
      } catch (e) {
        errno = Math.abs((e as NodeJS.ErrnoException).errno ?? 5) || 5;
      }
      ctl[x + K.ERRNO] = errno;
      done = (done + 1) | 0;
      Atomics.store(ctl, K.DONE, done);
    }
    Atomics.notify(ctl, K.DONE);
  }
}

const SOURCE = `'use strict';\n(${ioThread.toString()})();\n`;

interface Thread { worker: Worker; ctl: Int32Array }
/** Threads of closed media, kept for the next medium of the process: a thread takes ~0.1 s to start. */
const idle: Thread[] = [];
let nextBufferId = 1;

/** Atomics.waitAsync (ES2024; in Node since 16): a promise that settles when the thread notifies. */
const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number): { async: boolean; value: Promise<string> | string } }).waitAsync;

function startThread(): Thread {
  const ctl = new Int32Array(new SharedArrayBuffer(INTS * 4));
  const worker = new Worker(SOURCE, { eval: true, workerData: { control: C, ctl: ctl.buffer }, execArgv: [] });
  worker.unref();
  return { worker, ctl };
}

/** One medium's calls on a thread of its own, in order. */
export class MediumThread {
  private readonly t: Thread;
  private readonly ctl: Int32Array;
  /** Calls made (free-running, as SUBMIT once rung) and ended (as DONE once taken). */
  private made: number;
  private ended: number;
  private readonly dones: IoDone[] = new Array(C.CALLS);
  private readonly ids = new WeakMap<ArrayBufferLike, number>();
  private rung = true;
  /** Hand-offs to the thread so far (a round's calls are one). */
  handOffs = 0;
  private waiting = false;
  private failure?: Error;

  constructor() {
    this.t = idle.pop() ?? startThread();
    this.ctl = this.t.ctl;
    this.made = Atomics.load(this.ctl, C.SUBMIT);
    this.ended = this.made;
    this.t.worker.on('error', this.onError);
    this.t.worker.on('exit', this.onExit);
  }

  /** Calls made and not yet ended. */
  get inFlight(): number { return (this.made - this.ended) | 0; }

  read(fd: number, mem: Uint8Array, addr: number, offset: number, length: number, done: IoDone): void { this.call(C.OP_READ, fd, mem, addr, offset, length, done); }
  write(fd: number, mem: Uint8Array, addr: number, offset: number, length: number, done: IoDone): void { this.call(C.OP_WRITE, fd, mem, addr, offset, length, done); }
  flush(fd: number, done: IoDone): void { this.call(C.OP_FLUSH, fd, undefined, 0, 0, 0, done); }

  private call(op: number, fd: number, mem: Uint8Array | undefined, addr: number, offset: number, length: number, done: IoDone): void {
    if (this.failure) { const e = this.failure; queueMicrotask(() => done(errnoError(5, e.message))); return; }
    if (this.inFlight >= C.CALLS) throw new Error(`medium thread: more than ${C.CALLS} calls in flight`);
    const x = C.CALL0 + (this.made >>> 0) % C.CALLS * C.CALL_INTS;
    const ctl = this.ctl;
    ctl[x + C.OP] = op;
    ctl[x + C.FD] = fd;
    ctl[x + C.BUF] = mem ? this.id(mem) : 0;
    ctl[x + C.ADDR] = (mem ? mem.byteOffset + addr : 0) | 0;
    ctl[x + C.LENGTH] = length | 0;
    ctl[x + C.OFF_LO] = offset % 2 ** 32 | 0;
    ctl[x + C.OFF_HI] = Math.floor(offset / 2 ** 32) | 0;
    ctl[x + C.ERRNO] = 0;
    this.dones[(this.made >>> 0) % C.CALLS] = done;
    this.made = (this.made + 1) | 0;
    // Every call of this JavaScript task (a round) goes to the thread at its end, as one batch.
    if (this.rung) { this.rung = false; queueMicrotask(this.ring); }
  }

  private id(mem: Uint8Array): number {
    let id = this.ids.get(mem.buffer);
    if (id === undefined) {
      if (!(mem.buffer instanceof SharedArrayBuffer)) throw new Error('medium thread: the memory must be shared');
      id = nextBufferId++;
      this.ids.set(mem.buffer, id);
      this.t.worker.postMessage({ id, buf: mem.buffer });
    }
    return id;
  }

  private readonly ring = (): void => {
    this.rung = true;
    this.handOffs++;
    this.t.worker.ref(); // a process that waits for a medium call must not exit under it
    Atomics.store(this.ctl, C.SUBMIT, this.made);
    Atomics.notify(this.ctl, C.SUBMIT);
    this.arm();
  };

  /** Waits for the thread's next notify while calls are in flight. */
  private arm(): void {
    if (this.waiting || this.inFlight === 0 || this.failure) return;
    this.waiting = true;
    const w = waitAsync(this.ctl, C.DONE, this.ended);
    if (w.async) void (w.value as Promise<string>).then(this.reap);
    else queueMicrotask(this.reap);
  }

  /** Ends the calls the thread has done, in order. */
  private readonly reap = (): void => {
    this.waiting = false;
    const upTo = this.failure ? this.made : Atomics.load(this.ctl, C.DONE);
    while (this.ended !== upTo) {
      const i = (this.ended >>> 0) % C.CALLS;
      const errno = this.failure ? 5 : this.ctl[C.CALL0 + i * C.CALL_INTS + C.ERRNO];
      const done = this.dones[i];
      this.dones[i] = undefined as unknown as IoDone;
      this.ended = (this.ended + 1) | 0;
      done(errno === 0 ? undefined : errnoError(errno, this.failure?.message));
    }
    if (this.inFlight === 0) this.t.worker.unref();
    this.arm();
  };

  /** The thread died: every call in flight ends with EIO, and later calls fail at once. */
  private readonly onError = (e: Error): void => {
    this.failure = e;
    queueMicrotask(this.reap);
  };
  private readonly onExit = (code: number): void => this.onError(new Error(`medium I/O thread exited (${code})`));

  /** Only once no call is in flight: the thread goes back to the idle list for the next medium. */
  release(): void {
    const t = this.t;
    t.worker.off('error', this.onError);
    t.worker.off('exit', this.onExit);
    t.worker.unref();
    if (this.failure || this.inFlight > 0) { void t.worker.terminate(); return; }
    t.worker.postMessage({ id: 0 }); // forget this medium's buffers
    idle.push(t);
  }
}

function errnoError(errno: number, message?: string): NodeJS.ErrnoException {
  const code = Object.entries(require('os').constants.errno as Record<string, number>).find(([, v]) => v === errno)?.[0] ?? `E${errno}`;
  return Object.assign(new Error(message ?? `medium I/O failed: ${code}`), { errno: -errno, code });
}
