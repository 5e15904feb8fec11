// Tape benchmark (docs/tape.md, "Measured"): a labelled file set (ECMA-13 labels, data in 256 KiB
// records) written from BOT and read back with its checks, through sanbox's drive over framed TCP
// and over iSCSI, against the floor: the same AWS records written to and read from a file directly
// by Node (hal/tape/aws.ts, the pool's I/O, no SCSI, no array). The array runs in real time with
// a timing model too fast to matter (streaming at 100 GB/s), so what is measured is sanbox's own
// path: transport, firmware, ring, the binding's I/O. Then the same write in deterministic mode
// with the default LTO-5 model (140 MB/s streaming), whose virtual time says what fraction of the
// modelled streaming rate the drive reaches when the host keeps it fed.
//   npm run bench -- tape [--quick] [--mib=<per file>] [--files=<n>]
// One JSON document on stdout, progress on stderr.
import * as fs from 'fs';
import * as path from 'path';
import { performance } from 'perf_hooks';
import { Emulator } from '../harness';
import { connect } from '../host/connect';
import { TapeLibrary, writeLabelledSet, readLabelledSet, LabelledFile, vol1, label1, label2, volumeSerial } from '../host/tape';
import { AwsImage } from '../hal/tape/aws';
import type { CommandTransport } from '../lib/transport';
import { IscsiConn, iscsiTransport } from '../host/iscsi';
import { machine, UsageError } from './scsi-bench';
import { scratchRoot, guard } from './peers';

const MiB = 1 << 20;
const RECORD = 256 * 1024;

interface Row { write: { seconds: number; MBps: number }; read: { seconds: number; MBps: number } }

export async function run(args: string[]): Promise<object> {
  const opt = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
  for (const a of args) if (a !== '--quick' && !/^--(mib|files)=\d+$/.test(a)) throw new UsageError(`bench tape: unknown argument ${a} (known: --quick, --mib=<n>, --files=<n>)`);
  const quick = args.includes('--quick');
  const mib = Number(opt('mib') ?? (quick ? 8 : 64));
  const count = Number(opt('files') ?? 3);
  const files: LabelledFile[] = Array.from({ length: count }, (_, i) => ({ name: `FILE${i + 1}`, data: fill(mib * MiB, i + 1) }));
  const bytes = count * mib * MiB;
  const root = fs.mkdtempSync(path.join(scratchRoot(), 'tape-bench-'));
  const unguard = guard(() => fs.rmSync(root, { recursive: true, force: true }));
  try {
    progress(`floor: AWS records straight to a file (${count} x ${mib} MiB in ${RECORD / 1024} KiB records)`);
    const floor = await direct(path.join(root, 'floor.aws'), files, bytes);
    progress('sanbox over framed TCP');
    const tcp = await throughSanbox(path.join(root, 'tcp'), files, bytes, 'tcp');
    progress('sanbox over iSCSI');
    const iscsi = await throughSanbox(path.join(root, 'iscsi'), files, bytes, 'iscsi');
    progress('the streaming model in virtual time');
    const model = await modelled(path.join(root, 'model'), files, bytes);
    const ratio = (a: Row, b: Row) => ({ write: round3(a.write.MBps / b.write.MBps), read: round3(a.read.MBps / b.read.MBps) });
    return {
      benchmark: 'tape', machine: machine(), fileSet: { files: count, mibPerFile: mib, recordBytes: RECORD },
      rows: { floor, framedTcp: tcp, iscsi },
      ratioToFloor: { framedTcp: ratio(tcp, floor), iscsi: ratio(iscsi, floor) },
      model,
    };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
    unguard();
  }
}

/** The floor: the same records (labels, data, tapemarks) with AwsImage's pool I/O, one record at a time as a drive takes them, then read back. */
async function direct(file: string, files: LabelledFile[], bytes: number): Promise<Row> {
  const img = await AwsImage.open(file);
  const serial = volumeSerial('SB0001L5');
  const t0 = performance.now();
  let pos = 0;
  const rec = async (r: Uint8Array) => { await img.writeRecordsAsync(pos, [r]); pos++; };
  const mark = async (sync: boolean) => { await img.writeMarksAsync(pos, 1); pos++; if (sync) await img.sync(); };
  await rec(vol1(serial));
  for (let i = 0; i < files.length; i++) {
    const f = { name: files[i].name, sequence: i + 1, serial, created: new Date(), blockBytes: RECORD };
    await rec(label1('HDR', f)); await rec(label2('HDR', f)); await mark(true);
    let blocks = 0;
    for (let off = 0; off < files[i].data.length; off += RECORD) { await rec(files[i].data.subarray(off, off + RECORD)); blocks++; }
    await mark(true);
    await rec(label1('EOF', { ...f, blocks })); await rec(label2('EOF', f)); await mark(true);
  }
  await mark(true);
  const t1 = performance.now();
  let got = 0;
  for (let p = 0; p < img.objects.length; p++) {
    if (img.objects[p].mark) continue;
    got += (await img.readRecord(p, RECORD)).length;
  }
  const t2 = performance.now();
  img.close();
  if (got < bytes) throw new Error(`floor: read ${got} bytes of ${bytes}`);
  return row(bytes, t1 - t0, t2 - t1);
}

function topology(dir: string, mode: 'realtime' | 'deterministic', timing: object | undefined): object {
  return {
    arrays: [{
      name: 'a0', dir, iops: [{ role: 'channel' }, { role: 'disk' }], cache: { size: '16MiB' },
      media: [{ name: 'disk0', kind: 'ram', size: '16MiB' }],
      ports: [
        { name: 'q0', iop: 0, transport: 'inproc' },
        { name: 'fe0', iop: 0, transport: 'tcp', port: 0 },
        { name: 'is0', iop: 0, transport: 'tcp', protocol: 'iscsi', port: 0 },
      ],
      library: {
        slots: 2, importExport: 1, drives: [{ name: 'drive0' }],
        cartridges: [{ barcode: 'SB0001L5', size: '8GiB' }],
        ...(timing ? { timing } : {}),
      },
    }],
    mode,
  };
}

async function throughSanbox(dir: string, files: LabelledFile[], bytes: number, via: 'tcp' | 'iscsi'): Promise<Row> {
  const emu = await Emulator.start(topology(dir, 'realtime', { loadMs: 0, unloadMs: 0, moveMs: 0, locateMBps: 1e6, streamMBps: 1e5 }), {});
  let close: () => Promise<void> = async () => undefined;
  try {
    const target = emu.array().targets.find((x) => x.port === (via === 'tcp' ? 'fe0' : 'is0'))!.target;
    let transport: CommandTransport;
    if (via === 'tcp') {
      const c = await connect(target);
      transport = c;
      close = () => c.close();
    } else {
      const m = /^iscsi:\/\/([^/]+):(\d+)\/(.+)$/.exec(target)!;
      const conn = await IscsiConn.connect(Number(m[2]));
      await conn.login(m[3], { MaxRecvDataSegmentLength: 262144, MaxBurstLength: 262144, FirstBurstLength: 65536 });
      transport = iscsiTransport(conn, target);
      close = () => transport.close();
    }
    const lib = new TapeLibrary(transport);
    const drive = await lib.assign('SB0001L5');
    const t0 = performance.now();
    await writeLabelledSet(drive, files, { blockBytes: RECORD, largeBlocks: true });
    const t1 = performance.now();
    const back = await readLabelledSet(drive);
    const t2 = performance.now();
    const got = back.files.reduce((n, f) => n + f.data.length, 0);
    if (got !== bytes || back.files.some((f, i) => !f.data.equals(files[i].data))) throw new Error(`${via}: the file set read back differs from what was written`);
    await drive.release();
    return row(bytes, t1 - t0, t2 - t1);
  } finally {
    await close();
    await emu.stop();
  }
}

/** The default LTO-5 timing in virtual time: MB/s of the write as the model has it, against its streaming rate. */
async function modelled(dir: string, files: LabelledFile[], bytes: number): Promise<object> {
  const emu = await Emulator.start(topology(dir, 'deterministic', undefined), {});
  try {
    const lib = new TapeLibrary(emu.connect());
    const drive = await lib.assign('SB0001L5');
    const t0 = emu.driver().now();
    await writeLabelledSet(drive, files, { blockBytes: RECORD, largeBlocks: true });
    const t1 = emu.driver().now();
    await readLabelledSet(drive);
    const t2 = emu.driver().now();
    await drive.release();
    const streamMBps = 140;
    const w = bytes / 1e6 / ((t1 - t0) / 1e9);
    const r = bytes / 1e6 / ((t2 - t1) / 1e9);
    return {
      timing: 'default (LTO-5: 140 MB/s streaming, locate at 10 GB/s)', streamMBps,
      write: { virtualSeconds: round3((t1 - t0) / 1e9), MBps: round1(w), fractionOfStreaming: round3(w / streamMBps) },
      read: { virtualSeconds: round3((t2 - t1) / 1e9), MBps: round1(r), fractionOfStreaming: round3(r / streamMBps) },
    };
  } finally {
    await emu.stop();
  }
}

function fill(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i + 4 <= n; i += 4) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; b.writeUInt32LE(x, i); }
  return b;
}

function row(bytes: number, writeMs: number, readMs: number): Row {
  return {
    write: { seconds: round3(writeMs / 1e3), MBps: round1(bytes / 1e6 / (writeMs / 1e3)) },
    read: { seconds: round3(readMs / 1e3), MBps: round1(bytes / 1e6 / (readMs / 1e3)) },
  };
}

function progress(m: string): void { process.stderr.write(`bench tape: ${m}\n`); }
function round1(x: number): number { return Math.round(x * 10) / 10; }
function round3(x: number): number { return Math.round(x * 1000) / 1000; }
