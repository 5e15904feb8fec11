// Fixtures for the NBD tests: a small array with an NBD port (TCP, any free port) and an
// in-process port, a volume "v" mapped at LUN 1 of both; the real clients (libnbd's nbdinfo and
// nbdcopy, qemu-img, fio, nbdkit, qemu-nbd) found or skipped with the package that brings them.
import { Emulator } from '../../harness';
import { tempDir, startSmall, createVolume } from '../harness/env';

export { have, run } from '../iscsi/env';

export interface NbdArray {
  emu: Emulator;
  dir: string;
  /** The TCP port the NBD port listens on. */
  port: number;
  /** nbd://127.0.0.1:<port> (clients add /<export>). */
  url: string;
}

export interface NbdOptions {
  blocks?: number;
  blockSize?: 512 | 4096;
  sessions?: number;
  idleTimeoutMs?: number;
  extraPorts?: object[];
  cache?: object;
  media?: object[];
  mode?: 'realtime' | 'deterministic';
  trace?: boolean;
  nv?: object;
  /** The volume's placement (default striped; thin: TRIM deallocates, docs/nbd.md). */
  placement?: 'linear' | 'striped' | 'thin';
}

export async function startNbd(label: string, o: NbdOptions = {}): Promise<NbdArray> {
  const dir = tempDir(label);
  const emu = await startSmall({
    dir,
    mode: o.mode,
    trace: o.trace,
    cache: o.cache,
    media: o.media,
    nv: o.nv,
    ports: [
      { name: 'nbd0', iop: 0, transport: 'tcp', protocol: 'nbd', port: 0, ...(o.sessions ? { sessions: o.sessions } : {}),
        ...(o.idleTimeoutMs !== undefined ? { idleTimeoutMs: o.idleTimeoutMs } : {}) },
      { name: 'q0', iop: 0, transport: 'inproc' },
      ...(o.extraPorts ?? []),
    ],
  });
  const blockSize = o.blockSize ?? 512;
  await createVolume(emu.connect(), { name: 'v', blocks: o.blocks ?? 16384, blockSize, placement: o.placement ?? 'striped' }, 1);
  const url = emu.array().targets.find((x) => x.port === 'nbd0')!.target;
  const m = /^nbd:\/\/([^/]+):(\d+)$/.exec(url)!;
  return { emu, dir, port: Number(m[2]), url };
}
