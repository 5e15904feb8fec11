// Canary volumes: written with a known pattern before the fuzzer starts, reachable only through a
// port the fuzzer's session is not on, and never named by a frame the fuzzer sends (generate.ts,
// protect). Whatever the fuzzer does, their bytes must stay as written, and no read of the
// fuzzer's must ever return them: each 512-byte sector starts with CANARY_MAGIC.
import * as scsi from '../lib/scsi';
import { Prng } from '../hal/prng';
import { FuzzTarget, CANARY_PORT, FUZZ_PORT } from './target';
import { Initiator } from './initiator';
import { CANARY_VOLUMES } from './generate';

export const CANARY_MAGIC = Buffer.from('SANBOX-CANARY-', 'latin1');
export const CANARY_LUN_BASE = 250;

export interface CanarySpec {
  number: number; name: string; blockSize: 512 | 4096; blocks: number; placement?: 'linear' | 'striped' | 'thin'; media?: number[];
  /** A thin canary: the 64 KiB chunks written; the others were never written and must read zeros (LBPRZ). */
  written?: number[];
}

const CHUNK = 65536;

/**
 * Linear and striped, both block sizes, on every medium, one not a whole number of cache slots; and
 * a thin one, half written, on the media where the fuzzer's thin volumes take and give back chunks:
 * its unwritten chunks must read zeros however many chunks other volumes wrote and unmapped.
 */
export const CANARIES: CanarySpec[] = [
  { number: CANARY_VOLUMES[0], name: 'canary-a', blockSize: 512, blocks: 2048 },
  { number: CANARY_VOLUMES[1], name: 'canary-b', blockSize: 4096, blocks: 256, placement: 'striped' },
  { number: CANARY_VOLUMES[2], name: 'canary-c', blockSize: 512, blocks: 1000, media: [1] },
  { number: CANARY_VOLUMES[3], name: 'canary-d', blockSize: 4096, blocks: 3, media: [0] },
  { number: CANARY_VOLUMES[4], name: 'canary-e', blockSize: 512, blocks: 8 * 128, placement: 'thin', written: [0, 3, 4, 6] },
];

/** The fuzzer's own volumes at the start, mapped on its port at LUNs 1-3. */
export const INITIAL_VOLUMES: Array<scsi.VolumeSpec & { lun: number }> = [
  { name: 'fz-a', blockSize: 512, blocks: 4096, lun: 1 },
  { name: 'fz-b', blockSize: 4096, blocks: 512, placement: 'striped', lun: 2 },
  { name: 'fz-c', blockSize: 512, blocks: 100, media: [1], lun: 3 },
  { name: 'fz-d', blockSize: 512, blocks: 2048 * 128, placement: 'thin', lun: 4 }, // 128 MiB: the media's size, overcommitted
];

const patterns: Buffer[] = [];

/** Canary i's bytes: a pattern of its own, CANARY_MAGIC and the volume number at each sector. */
export function canaryBytes(i: number): Buffer {
  patterns[i] ??= pattern(i);
  return patterns[i];
}

function pattern(i: number): Buffer {
  const c = CANARIES[i];
  const b = Buffer.alloc(c.blocks * c.blockSize);
  const rng = new Prng(0xc0ffee + i);
  for (let at = 0; at < b.length; at += 4) b.writeUInt32LE(rng.u32(), at);
  for (let s = 0; s < b.length; s += 512) {
    CANARY_MAGIC.copy(b, s);
    b.writeUInt16BE(c.number, s + 14);
  }
  if (c.written) for (let at = 0; at < b.length; at += CHUNK) if (!c.written.includes(at / CHUNK)) b.fill(0, at, at + CHUNK);
  return b;
}

/** Creates the canaries (port 1 only) and the fuzzer's first volumes (port 0), deterministically. */
export function setUp(t: FuzzTarget): void {
  const c = new Initiator(t, CANARY_PORT);
  CANARIES.forEach((spec, i) => {
    c.ok(0, scsi.management(true, scsi.Management.CREATE_VOLUME, 64), { out: scsi.createVolumeParameters(spec) });
    c.ok(0, scsi.management(true, scsi.Management.MAP_VOLUME, 8), { out: scsi.mapParameters(spec.number, CANARY_PORT, CANARY_LUN_BASE + i) });
    if (!spec.written) c.ok(CANARY_LUN_BASE + i, scsi.readWrite(true, 0, spec.blocks), { out: canaryBytes(i) });
    const perChunk = CHUNK / spec.blockSize;
    for (const k of spec.written ?? []) {
      c.ok(CANARY_LUN_BASE + i, scsi.readWrite(true, k * perChunk, perChunk), { out: canaryBytes(i).subarray(k * CHUNK, (k + 1) * CHUNK) });
    }
  });
  c.close();
  const f = new Initiator(t, FUZZ_PORT);
  for (const v of INITIAL_VOLUMES) {
    f.ok(0, scsi.management(true, scsi.Management.CREATE_VOLUME, 64), { out: scsi.createVolumeParameters(v) });
    const list = scsi.parseVolumes(f.ok(0, scsi.management(false, scsi.Management.LIST_VOLUMES, 1 << 17), { inLength: 1 << 17 }));
    const n = list.find((x) => x.name === v.name)!.number;
    f.ok(0, scsi.management(true, scsi.Management.MAP_VOLUME, 8), { out: scsi.mapParameters(n, FUZZ_PORT, v.lun) });
  }
  f.close();
}

/** Reads every canary back through its port. Returns what differs, in words (empty: intact). */
export function verifyCanaries(t: FuzzTarget): string[] {
  const problems: string[] = [];
  const c = new Initiator(t, CANARY_PORT);
  CANARIES.forEach((spec, i) => {
    const want = canaryBytes(i);
    const r = c.command(CANARY_LUN_BASE + i, scsi.readWrite(false, 0, spec.blocks), { inLength: want.length });
    if (r.status !== 0) {
      problems.push(`canary ${spec.name} (volume ${spec.number}): READ ended ${r.sense.length ? scsi.describeSense(scsi.decodeSense(r.sense)) : scsi.statusName(r.status)}`);
      return;
    }
    if (!r.data.equals(want)) {
      let at = 0;
      while (at < want.length && r.data[at] === want[at]) at++;
      problems.push(`canary ${spec.name} (volume ${spec.number}): ${r.data.length} of ${want.length} bytes read, first difference at byte ${at}`);
    }
  });
  problems.push(...c.errors);
  c.close();
  return problems;
}
