// Test fixtures: a small emulator in a fresh temporary directory, and command helpers over any
// CommandTransport built from lib/scsi.ts.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Emulator, StartOptions } from '../../harness';
import * as scsi from '../../lib/scsi';
import type { CommandTransport, ScsiResult } from '../../lib/transport';

const madeDirs: string[] = [];

/** A fresh directory under the system's temporary directory, removed when the test process exits. */
export function tempDir(label: string): string {
  if (madeDirs.length === 0) process.on('exit', removeMadeDirs);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `sanbox-${label}-`));
  madeDirs.push(dir);
  return dir;
}

// A test file's arrays are stopped by its teardowns before its process exits; a directory a
// killed child still holds is left (best effort: a leftover is disk, not a wrong result). Set
// SANBOX_KEEP_TEST_DIRS=1 to keep them for a post-mortem.
function removeMadeDirs(): void {
  if (process.env.SANBOX_KEEP_TEST_DIRS) return;
  for (const dir of madeDirs) {
    try { fs.rmSync(dir, { recursive: true, force: true }); } catch { /* left for the OS's tmp cleaning */ }
  }
}

export interface SmallOptions {
  dir: string;
  /** The array's name (default a0); arrays running at once in one process need names of their own. */
  name?: string;
  /** Channel IOPs (default 1); the disk IOP comes after them. */
  channels?: number;
  mode?: 'realtime' | 'deterministic';
  seed?: number;
  media?: object[];
  ports?: object[];
  cache?: object;
  nv?: object;
  trace?: boolean;
  traceCommands?: boolean;
}

/** One array: a channel IOP (or o.channels of them) and the disk IOP, two 64 MiB media, an inproc port. */
export function smallTopology(o: SmallOptions): object {
  return {
    mode: o.mode ?? 'realtime',
    seed: o.seed ?? 1,
    ...(o.trace ? { trace: path.join(o.dir, 'trace.jsonl'), metricsIntervalMs: 10 } : {}),
    arrays: [{
      name: o.name ?? 'a0',
      dir: path.join(o.dir, o.name ?? 'a0'),
      cache: { size: '8MiB', destageIntervalMs: 2, destageAgeMs: 5, ...o.cache },
      ...(o.nv ? { nv: o.nv } : {}),
      traceCommands: o.traceCommands ?? false,
      iops: [...Array.from({ length: o.channels ?? 1 }, () => ({ role: 'channel' })), { role: 'disk' }],
      media: o.media ?? [{ name: 'd0', kind: 'file', size: '64MiB' }, { name: 'd1', kind: 'file', size: '64MiB' }],
      ports: o.ports ?? [{ name: 'q0', iop: 0, transport: 'inproc' }],
    }],
  };
}

export function startSmall(o: SmallOptions, start: StartOptions = {}): Promise<Emulator> {
  return Emulator.start(smallTopology(o), { debug: true, ...start });
}

/**
 * The small array with two channel IOPs, each serving an inproc and a TCP port (q0, fe0 on IOP 0;
 * q1, fe1 on IOP 1): what the end-to-end tests of sanctl run against, so that commands cross
 * between channel IOPs through the cache and the disk IOP as in the default topology.
 */
export function dualChannelTopology(o: SmallOptions): object {
  return smallTopology({
    channels: 2,
    ports: [
      { name: 'q0', iop: 0, transport: 'inproc' }, { name: 'fe0', iop: 0, transport: 'tcp', port: 0 },
      { name: 'q1', iop: 1, transport: 'inproc' }, { name: 'fe1', iop: 1, transport: 'tcp', port: 0 },
    ],
    ...o,
  });
}

export function startDualChannel(o: SmallOptions, start: StartOptions = {}): Promise<Emulator> {
  return Emulator.start(dualChannelTopology(o), { debug: true, ...start });
}

/** Sends a command; a status other than GOOD throws ScsiError with the sense in words. */
export async function run(t: CommandTransport, lun: number, cdb: Buffer, io: { out?: Uint8Array; inLength?: number } = {}): Promise<ScsiResult> {
  const r = await t.submit({ lun, cdb, dataOut: io.out, dataInLength: io.inLength });
  if (r.status !== 0) throw new scsi.ScsiError(r.status, r.sense.length > 0 ? scsi.decodeSense(r.sense) : undefined, cdb[0]);
  return r;
}

/** Creates a volume and maps it at `lun` on every port. Returns its number. */
export async function createVolume(t: CommandTransport, spec: scsi.VolumeSpec, lun: number): Promise<number> {
  await run(t, 0, scsi.management(true, scsi.Management.CREATE_VOLUME, 64), { out: scsi.createVolumeParameters(spec) });
  const list = await run(t, 0, scsi.management(false, scsi.Management.LIST_VOLUMES, 65536), { inLength: 65536 });
  const v = scsi.parseVolumes(Buffer.from(list.data)).find((x) => x.name === spec.name);
  if (!v) throw new Error(`volume ${spec.name} not listed after CREATE VOLUME`);
  await run(t, 0, scsi.management(true, scsi.Management.MAP_VOLUME, 8), { out: scsi.mapParameters(v.number, scsi.ALL_PORTS, lun) });
  return v.number;
}

export function read(t: CommandTransport, lun: number, lba: number, blocks: number, blockSize = 512): Promise<Buffer> {
  return run(t, lun, scsi.readWrite(false, lba, blocks), { inLength: blocks * blockSize }).then((r) => Buffer.from(r.data));
}

export function write(t: CommandTransport, lun: number, lba: number, data: Uint8Array, blockSize = 512, fua = false): Promise<ScsiResult> {
  return run(t, lun, scsi.readWrite(true, lba, data.length / blockSize, { fua }), { out: data });
}

/** Bytes that differ at every sector and for every seed. */
export function pattern(bytes: number, seed: number): Buffer {
  const b = Buffer.alloc(bytes);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < bytes; i += 4) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b.writeUInt32LE(x, i);
  }
  return b;
}

/** The sense of a rejected command, or a failure if it succeeded. */
export async function senseOf(p: Promise<unknown>): Promise<scsi.Sense> {
  try {
    await p;
  } catch (e) {
    if (e instanceof scsi.ScsiError && e.sense) return e.sense;
    throw e;
  }
  throw new Error('the command succeeded; expected CHECK CONDITION');
}
