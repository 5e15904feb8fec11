// Durability against a power loss of the host (issue 7, defect 3), through the real firmware: a
// medium store that, like an operating system's page cache, holds writes until a flush; a host
// crash loses what was not flushed. With "nv": { "sync": true } the NV file is durable at once, so
// a slot's clean record must not land before its data is flushed on the medium, nor the clean-
// shutdown mark before every medium is flushed.
import test from 'ava';
import * as path from 'path';
import * as A from '../../hal/abi';
import type { MediumStore } from '../../hal/media/store';
import type { Emulator } from '../../harness';
import { startSmall, tempDir, createVolume, write, read, pattern } from './env';

/** Writes stay in memory (readable) until flush(); close() is a host crash: pending writes are lost. */
class PageCacheStore implements MediumStore {
  private pending = new Map<number, Uint8Array>(); // sector -> bytes
  flushes = 0;
  constructor(private readonly inner: MediumStore) {}
  get description(): string { return `page cache over ${this.inner.description}`; }
  read(mem: Uint8Array, addr: number, offset: number, length: number): void {
    this.inner.read(mem, addr, offset, length);
    for (let o = 0; o < length; o += 512) {
      const p = this.pending.get((offset + o) / 512);
      if (p) mem.set(p, addr + o);
    }
  }
  write(mem: Uint8Array, addr: number, offset: number, length: number): void {
    for (let o = 0; o < length; o += 512) this.pending.set((offset + o) / 512, mem.slice(addr + o, addr + o + 512));
  }
  flush(): void {
    for (const [sector, bytes] of this.pending) this.inner.write(bytes, 0, sector * 512, 512);
    this.pending.clear();
    this.inner.flush();
    this.flushes++;
  }
  close(): void { this.pending.clear(); this.inner.close(); }
}

function pageCache(emu: Emulator): PageCacheStore[] {
  return emu.array().media.map((m) => {
    const s = new PageCacheStore(m.store);
    (m as unknown as { store: MediumStore }).store = s;
    return s;
  });
}

for (const how of ['flush, then the host crashes', 'graceful stop, then the host crashes'] as const) {
  test(`nv.sync: data destaged and marked clean is on the media after ${how}`, async (t) => {
    const dir = tempDir('durable');
    const o = { dir, mode: 'deterministic' as const, nv: { sync: true }, media: [{ name: 'd0', kind: 'file', size: '64MiB' }] };
    const emu = await startSmall(o);
    const stores = pageCache(emu);
    const s = emu.connect();
    await createVolume(s, { name: 'v', blocks: 16384, blockSize: 512, placement: 'linear' }, 1);
    const data = pattern(1 << 20, 7);
    for (let i = 0; i < 8; i++) await write(s, 1, i * 256, data.subarray(i * 131072, (i + 1) * 131072));
    if (how.startsWith('flush')) {
      await emu.flush();
      await emu.stop('powerFail'); // the page cache goes with the host: only flushed data is on the image
    } else {
      await emu.stop('graceful');
    }
    const flushes = stores[0].flushes;
    const again = await startSmall(o);
    t.teardown(() => again.stop());
    const s2 = again.connect();
    t.true((await read(s2, 1, 0, 2048)).equals(data), 'every acknowledged write reads back');
    t.true(flushes > 0, 'the firmware flushed the medium');
  });
}

test('one medium flush covers a burst of destages (not one flush per slot)', async (t) => {
  const dir = tempDir('durable-batch');
  const emu = await startSmall({ dir, mode: 'deterministic', media: [{ name: 'd0', kind: 'file', size: '64MiB' }] });
  t.teardown(() => emu.stop());
  const s = emu.connect();
  await createVolume(s, { name: 'v', blocks: 16384, blockSize: 512, placement: 'linear' }, 1);
  for (let i = 0; i < 32; i++) await write(s, 1, i * 128, pattern(65536, i));
  await emu.flush();
  const st = emu.array().stats();
  t.true(st[A.STAT_DESTAGES] >= 32);
  t.true(st[A.STAT_MEDIA_FLUSHES] >= 1 && st[A.STAT_MEDIA_FLUSHES] < st[A.STAT_DESTAGES], `${st[A.STAT_MEDIA_FLUSHES]} flushes for ${st[A.STAT_DESTAGES]} destages`);
});
