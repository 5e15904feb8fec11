// A raw framed connection for tests that speak the protocol byte by byte: it collects the frames
// the controller sends and builds the frames a test sends, malformed ones included.
import * as net from 'net';
import * as P from '../../lib/protocol';

export type RawConnection = Awaited<ReturnType<typeof rawConnection>>;

export async function rawConnection(port: number) {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  const decoder = new P.FrameDecoder();
  const frames: P.Frame[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  sock.on('data', (b) => {
    for (const e of decoder.push(b)) if (!P.isDecodeError(e)) frames.push(e);
    wake?.();
  });
  sock.on('close', () => { ended = true; wake?.(); });
  /**
   * The first frame received (or to come) that satisfies pred, taken off the list. It waits for
   * frames, not for a time: a busy machine only makes it later. guardMs, if given, is a last-resort
   * bound (ava's own timeout is the default one).
   */
  const take = async (pred: (f: P.Frame) => boolean, guardMs?: number): Promise<P.Frame> => {
    const since = Date.now();
    for (;;) {
      const i = frames.findIndex(pred);
      if (i >= 0) return frames.splice(i, 1)[0];
      if (ended) throw new Error(`the connection closed without such a frame (have types ${frames.map((f) => f.type)})`);
      if (guardMs !== undefined && Date.now() - since > guardMs) throw new Error(`no such frame within ${guardMs} ms (have types ${frames.map((f) => f.type)})`);
      await new Promise<void>((r) => {
        wake = r;
        if (guardMs !== undefined) setTimeout(r, guardMs).unref();
      });
    }
  };
  const next = (type: number, guardMs?: number) => take((f) => f.type === type, guardMs);
  return { sock, frames, take, next };
}

export const header = (type: number, tag: number, extra: Partial<P.FrameHeader> = {}): P.FrameHeader => ({
  type, flags: 0, tag, source: P.HOST_ADDRESS, destination: P.BROADCAST, sequence: 0, offset: 0, parameter: 0, ...extra,
});

/** A CMD frame: data-out when `out`, else data-in when expected > 0. */
export function commandFrame(tag: number, lun: number, cdb: Buffer, expected: number, out: boolean): Buffer {
  return P.encodeFrame(header(P.FrameType.CMD, tag),
    P.encodeCommand({ lun, taskAttribute: 'simple', dataOut: out, dataIn: !out && expected > 0, expectedLength: expected, cdb }));
}

/** The port number of a tcp://host:port target. */
export const tcpPort = (target: string): number => Number(target.split(':').pop());
