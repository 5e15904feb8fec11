// Fixtures for the copy manager's tests: an array with two 8 MiB volumes on separate media (LUNs 1
// and 2), a third for restores (LUN 3), and a library whose cartridges hold a volume and more, in
// deterministic mode (virtual time).
import { Emulator } from '../../harness';
import { ScsiClient } from '../../host/client';
import { TapeLibrary } from '../../host/tape';
import { CopyManager } from '../../host/backup';
import { tempDir, createVolume, write, pattern, read } from '../harness/env';
import { libraryTopology } from '../tape/env';
import type { CommandTransport } from '../../lib/transport';

export const BLOCKS = 8 * 2048; // 8 MiB of 512-byte blocks: 128 tracks of 64 KiB
export const TRACK = 65536;

export interface Rig {
  emu: Emulator; dir: string; s: CommandTransport; c: ScsiClient; lib: TapeLibrary; cm: CopyManager;
  src: number; tgt: number; spare: number; ref: Buffer;
}

/**
 * o.tcp: in real time, with two channel IOPs each serving an inproc and a framed TCP port (q0, fe0
 * on IOP 0; q1, fe1 on IOP 1), as npm start's default topology; the rig's own session stays inproc.
 */
export async function rig(label: string, o: { cache?: string; cartridge?: string; disks?: boolean; tcp?: boolean } = {}): Promise<Rig> {
  const dir = tempDir(label);
  const topo = libraryTopology({
    dir, seed: 11,
    ...(o.tcp ? {
      mode: 'realtime', channels: 2,
      ports: [0, 1].flatMap((iop) => [{ name: `q${iop}`, iop, transport: 'inproc' }, { name: `fe${iop}`, iop, transport: 'tcp', port: 0 }]),
    } : {}),
    // disks: media with a disk's timing (seek, rotation, transfer), so a pair copy takes the time it would
    ...(o.disks ? { media: ['d0', 'd1'].map((name) => ({ name, kind: 'file', size: '64MiB', timing: { seekMs: { average: 8 }, rpm: 7200, transferMBps: 100 } })) } : {}),
    cache: { size: o.cache ?? '8MiB', destageIntervalMs: 2, destageAgeMs: 5 },
    library: { ...(o.tcp ? { timing: { loadMs: 1, unloadMs: 1, moveMs: 1 } } : {}), cartridges: [{ barcode: 'SB0001L5', size: o.cartridge ?? '64MiB' }, { barcode: 'SB0002L5', size: o.cartridge ?? '64MiB' }, { barcode: 'SB0003L5', size: '4MiB', writeProtect: true }] },
  });
  const emu = await Emulator.start(topo, { debug: true });
  const s = emu.connect();
  const c = new ScsiClient(s);
  const src = await createVolume(s, { name: 'src', blocks: BLOCKS, blockSize: 512, media: [0] }, 1);
  const tgt = await createVolume(s, { name: 'tgt', blocks: BLOCKS, blockSize: 512, media: [1] }, 2);
  const spare = await createVolume(s, { name: 'spare', blocks: BLOCKS, blockSize: 512, media: [1] }, 3);
  const ref = pattern(BLOCKS * 512, 1);
  for (let off = 0; off < ref.length; off += 1 << 20) await write(s, 1, off / 512, ref.subarray(off, off + (1 << 20)));
  return { emu, dir, s, c, lib: new TapeLibrary(s), cm: new CopyManager(s, 1), src, tgt, spare, ref };
}

export async function volumeData(t: CommandTransport, lun: number, blocks = BLOCKS): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let lba = 0; lba < blocks; lba += 2048) parts.push(await read(t, lun, lba, Math.min(2048, blocks - lba)));
  return Buffer.concat(parts);
}
