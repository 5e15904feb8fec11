// The medium binding (hal/media/binding.ts, docs/hal.md "Media"): a request's completion is posted
// only when its store call has ended; a flush starts only when every request before it has ended;
// a threaded store has a bounded share of libuv's pool; after a power failure nothing more reaches
// the store. The requests here are queued by the test as the disk IOP would, on the rings of a
// booted, idle array, to a binding over a store the test holds; then, through the firmware, a
// medium whose calls do not end does not hold up the rest of the array.
import test from 'ava';
import * as A from '../../hal/abi';
import { EntryRing } from '../../hal/ring';
import { Prng } from '../../hal/prng';
import { MediumBinding } from '../../hal/media/binding';
import type { MediumStore, IoDone } from '../../hal/media/store';
import { tempDir, startSmall, createVolume, read, write, pattern } from '../harness/env';

/** A store whose calls end when the test says so. */
class HeldStore implements MediumStore {
  readonly threaded = true;
  readonly description = 'held';
  readonly log: string[] = [];
  readonly calls: Array<{ what: string; end: (e?: NodeJS.ErrnoException) => void }> = [];
  private call(what: string, done: IoDone): void {
    this.log.push(`${what} start`);
    this.calls.push({ what, end: (e) => { this.log.push(`${what} end`); done(e); } });
  }
  read(_m: Uint8Array, _a: number, offset: number, _n: number, done: IoDone): void { this.call(`read ${offset / 512}`, done); }
  write(_m: Uint8Array, _a: number, offset: number, _n: number, done: IoDone): void { this.call(`write ${offset / 512}`, done); }
  flush(done: IoDone): void { this.call('flush', done); }
  close(): void {}
  /** Ends the held call whose name is `what`. */
  end(what: string, e?: NodeJS.ErrnoException): void {
    const i = this.calls.findIndex((c) => c.what === what);
    if (i < 0) throw new Error(`no call ${what} is held (held: ${this.calls.map((c) => c.what).join(', ')})`);
    this.calls.splice(i, 1)[0].end(e);
  }
}

async function rig(label: string) {
  const emu = await startSmall({ dir: tempDir(label), mode: 'deterministic' });
  await emu.settle();
  const a = emu.array();
  const store = new HeldStore();
  const b = new MediumBinding(a.mem, 0, 'held', store, 64 << 20, undefined, [], new Prng(1));
  const entry = A.MAP_ADDR + A.MAP_MEDIA_TABLE;
  const sq = new EntryRing(a.mem, a.mem.u32(entry + A.MMED_SQ));
  const cq = new EntryRing(a.mem, a.mem.u32(entry + A.MMED_CQ));
  const slot = a.nv.base + a.nv.bytes - A.SLOT_BYTES;
  /** Queues a request as the disk IOP's IO scheduler would. */
  const submit = (op: number, id: number, lba: number, sectors: number) => {
    const e = sq.reserve();
    a.mem.u8.fill(0, e, e + A.MSQ_BYTES);
    a.mem.setU8(e + A.MSQ_OPCODE, op);
    a.mem.setU32(e + A.MSQ_ID, id);
    a.mem.setU32(e + A.MSQ_LBA_LO, lba);
    a.mem.setU32(e + A.MSQ_SECTORS, sectors);
    a.mem.setU32(e + A.MSQ_ADDR, slot);
    sq.publish();
  };
  /** The completions posted so far: [id, status, first failing sector]. */
  const posted = (): Array<[number, number, number]> => {
    const out: Array<[number, number, number]> = [];
    for (let e = cq.peek(); e >= 0; e = cq.peek()) {
      out.push([a.mem.u32(e + A.MCQ_ID), a.mem.u16(e + A.MCQ_STATUS), a.mem.u32(e + A.MCQ_ERR_LBA_LO)]);
      cq.release();
    }
    return out;
  };
  // The array's own binding of medium 0 is idle (no doorbell, no round): this one serves the rings.
  return { emu, a, b, store, submit, posted };
}

test('a completion is posted only when its call has ended; a flush starts only when every request before it has ended', async (t) => {
  const { emu, b, store, submit, posted } = await rig('media-flush');
  t.teardown(() => emu.stop('powerFail'));
  submit(A.MOP_WRITE, 1, 0, 8);
  submit(A.MOP_WRITE, 2, 8, 8);
  submit(A.MOP_FLUSH, 3, 0, 0);
  submit(A.MOP_READ, 4, 16, 8);
  b.service(0);
  t.deepEqual(store.log, ['write 0 start', 'write 8 start'], 'the flush waits; the read waits its turn behind it');
  t.deepEqual(posted(), [], 'nothing has ended');
  t.true(b.ioBusy);
  store.end('write 8');
  b.service(0);
  t.deepEqual(posted(), [[2, A.MST_OK, 0]], 'a call that ended is posted, whichever ends first');
  t.is(store.log.includes('flush start'), false, 'write 0 has not ended: no flush yet');
  store.end('write 0');
  b.service(0);
  t.deepEqual(posted(), [[1, A.MST_OK, 0]]);
  t.deepEqual(store.log.slice(-3), ['write 0 end', 'flush start', 'read 16 start'], 'a request after a flush need not wait for it');
  store.end('flush');
  b.service(0);
  t.deepEqual(posted(), [[3, A.MST_OK, 0]]);
  store.end('read 16', Object.assign(new Error('EIO'), { errno: -5, code: 'EIO' }));
  b.service(0);
  t.deepEqual(posted(), [[4, A.MST_READ_ERROR, 16]], 'a failed call fails its request at its first sector');
  t.false(b.busy);
});

test('a threaded store has at most two calls in flight; the rest wait in order', async (t) => {
  const { emu, b, store, submit, posted } = await rig('media-cap');
  t.teardown(() => emu.stop('powerFail'));
  for (let i = 0; i < 6; i++) submit(A.MOP_READ, 10 + i, i * 8, 8);
  b.service(0);
  t.is(store.calls.length, 2);
  t.is(b.nextTimerNs(), Infinity, 'nothing to do until a call ends (it wakes the driver)');
  store.end('read 0');
  b.service(0);
  t.deepEqual(store.calls.map((c) => c.what), ['read 8', 'read 16']);
  for (const w of ['read 8', 'read 16', 'read 24', 'read 32', 'read 40']) { store.end(w); b.service(0); }
  t.deepEqual(posted().map((p) => p[0]), [10, 11, 12, 13, 14, 15]);
});

test('after a power failure no request reaches the store; a call already made may still end', async (t) => {
  const { emu, b, store, submit } = await rig('media-cut');
  t.teardown(() => emu.stop('powerFail'));
  submit(A.MOP_WRITE, 1, 0, 8);
  submit(A.MOP_WRITE, 2, 8, 8);
  submit(A.MOP_WRITE, 3, 16, 8);
  b.service(0);
  b.powerFail();
  store.end('write 0');
  store.end('write 8');
  b.service(0);
  submit(A.MOP_WRITE, 4, 24, 8);
  b.service(0);
  t.deepEqual(store.log, ['write 0 start', 'write 8 start', 'write 0 end', 'write 8 end']);
  await b.idle();
});

test('a medium whose calls do not end holds up nothing else: a read hit and a write on another medium complete meanwhile (real time, on events)', async (t) => {
  const emu = await startSmall({
    dir: tempDir('media-slow'), mode: 'realtime',
    media: [{ name: 'd0', kind: 'ram', size: '64MiB' }, { name: 'd1', kind: 'ram', size: '64MiB' }],
  });
  t.teardown(() => emu.stop());
  const s = emu.connect();
  const a = emu.array();
  await createVolume(s, { name: 'fast', blocks: 65536, blockSize: 512, placement: 'striped', media: [0] }, 1);
  await createVolume(s, { name: 'slow', blocks: 65536, blockSize: 512, placement: 'striped', media: [1] }, 2);
  const p = pattern(4096, 21);
  await write(s, 1, 0, p);
  // d1 is made slow: its calls end only when the test lets them.
  const held: Array<() => void> = [];
  let firstHeld!: () => void;
  const holding = new Promise<void>((r) => { firstHeld = r; });
  a.media[1].gate = (resume) => { held.push(resume); firstHeld(); };
  let slowDone = false;
  const q = pattern(4096, 23);
  const slow = write(s, 2, 0, q, 512, true).then(() => { slowDone = true; }); // FUA: done when on d1
  await holding;
  const hits = a.stats()[A.STAT_READ_HITS];
  t.deepEqual(await read(s, 1, 0, 8), p, 'the read hit on the other volume completes');
  t.is(a.stats()[A.STAT_READ_HITS], hits + 1);
  await write(s, 1, 64, pattern(4096, 22));
  t.false(slowDone, 'the FUA write to d1 is still waiting for it');
  a.media[1].gate = (resume) => resume();
  for (const r of held.splice(0)) r();
  await slow;
  t.deepEqual(await read(s, 2, 0, 8), q);
});
