// A framed byte-stream connection (TCP socket, serial port) on a session slot of a stream port
// (docs/hal.md, Channels). Received bytes go into the session's rx ring as they come; when the
// ring is full the stream is paused and the rest waits here until the firmware has made room.
// What the firmware puts into the tx ring is written to the peer straight from the ring (no copy:
// 1 MiB reads spent a fifth of the process copying it out): the bytes stay in the ring until the
// stream has handed them to the kernel, so the firmware never overwrites what a write still reads.
// While the peer's socket buffer is full (write() returned false) nothing more is written, and
// the firmware waits for room.
// When the firmware asks for the connection to be closed (SES_HANGUP, with the tx doorbell), what
// it sent is handed to the stream and the slot is freed at once; the port closes the stream after
// that has gone out, within a bound (ports.ts, closeSocket).
import type { Duplex } from 'stream';
import * as A from '../abi';
import { CommonMemory } from '../memory';
import { ByteRing } from '../ring';
import { SessionSlot } from './session';

/** Why a session ended, in words for the harness's log. */
/** Why a session ended; 'stalled': the firmware ended it while the peer was not reading (cut at once). */
export type HangUpReason = 'peer' | 'stopping' | 'idle' | 'protocol' | 'stalled';

export class StreamSession {
  readonly slot: SessionSlot;
  private readonly rx: ByteRing;
  private readonly tx: ByteRing;
  private pending: Buffer[] = [];
  private paused = false;
  private blocked = false;
  private ended = false;
  /** Bytes of the tx ring written to the stream and not yet released: a write may still read them. */
  private inFlight = 0;
  /** The hang-up's reason while writes still read the tx ring: the slot is given back after them. */
  private endAfterWrites?: HangUpReason;

  constructor(
    mem: CommonMemory,
    port: number,
    index: number,
    private readonly stream: Duplex,
    private readonly kick: () => void,
    private readonly onEnd: (s: StreamSession, reason: HangUpReason) => void,
    /** Lets go of the stream (a socket is destroyed; a serial port must be closed). */
    private readonly closeStream: (stream: Duplex, reason: HangUpReason) => void = (st) => st.destroy(),
    localAddress = '',
    peerAddress = '',
  ) {
    this.slot = new SessionSlot(mem, port, index);
    this.rx = new ByteRing(mem, this.slot.ring(A.SES_RX));
    this.tx = new ByteRing(mem, this.slot.ring(A.SES_TX));
    this.slot.open([this.rx, this.tx], localAddress, peerAddress);
    stream.on('data', (b: Buffer) => this.receive(b));
    stream.on('drain', () => { this.blocked = false; this.flushTx(); this.kick(); });
    stream.on('close', () => { this.hangUp('peer'); this.settle(); });
    stream.on('end', () => this.hangUp('peer'));
    stream.on('error', () => this.hangUp('peer'));
  }

  private receive(b: Buffer): void {
    if (this.pending.length === 0) {
      const n = this.rx.write(b);
      if (n < b.length) this.hold(b.subarray(n));
    } else {
      this.hold(b);
    }
    this.kick();
  }

  private hold(b: Buffer): void {
    this.pending.push(b);
    if (!this.paused) { this.paused = true; this.stream.pause(); }
  }

  /** After a poll round: moves held bytes into the ring as it empties. Returns bytes moved. */
  pump(): number {
    let moved = 0;
    while (this.pending.length > 0) {
      const b = this.pending[0];
      const n = this.rx.write(b);
      moved += n;
      if (n < b.length) { this.pending[0] = b.subarray(n); break; }
      this.pending.shift();
    }
    if (this.paused && this.pending.length === 0 && !this.ended) { this.paused = false; this.stream.resume(); }
    return moved;
  }

  /** Writes what the firmware produced to the peer (the session's tx doorbell); hangs up when asked. */
  flushTx(): number {
    if (this.ended) return 0;
    let n = 0;
    while (!this.blocked) {
      const out = this.tx.view(this.inFlight); // up to the wrap: a second view takes the rest
      if (out.length === 0) break;
      n += out.length;
      this.inFlight += out.length;
      if (!this.stream.write(out, this.written)) this.blocked = true;
    }
    this.settle();
    // The firmware asked to close: at once when idle; when its protocol ended the session (an
    // iSCSI Logout Response, a login failure: the peer must get them) after what it sent has been
    // written, within the port's close grace. A peer whose socket is full (it stops reading) is cut
    // at once instead: waiting for a 'drain' would let it keep the slot for ever, and the slot is
    // only given back once no write reads its ring (settle), so the cut is what frees it.
    const why = this.slot.hangupRequest;
    if (why === A.HANGUP_IDLE) this.hangUp('idle');
    else if (why === A.HANGUP_PROTOCOL) this.hangUp(this.blocked ? 'stalled' : 'protocol');
    return n;
  }

  /** A write ended: what it read of the ring is given back (the firmware may have waited for room). */
  private readonly written = (): void => { if (this.settle() > 0) this.kick(); };

  /**
   * Releases the ring bytes written so far once no write reads them any more: the stream has
   * handed every one to the kernel (writableLength 0), or it is destroyed. After a hang-up, that
   * is when the slot may be given to another connection, whose bytes the ring will then hold.
   * Returns the bytes released.
   */
  private settle(): number {
    if (this.inFlight === 0 || (this.stream.writableLength > 0 && !this.stream.destroyed)) return 0;
    const n = this.inFlight;
    this.inFlight = 0;
    if (!this.ended) this.tx.release(n);
    if (this.endAfterWrites) { const why = this.endAfterWrites; this.endAfterWrites = undefined; this.onEnd(this, why); }
    return n;
  }

  /** The peer went away, the harness stops, or the firmware asked: the firmware drops the session's commands. */
  hangUp(reason: HangUpReason): void {
    if (this.ended) return;
    this.ended = true;
    this.pending = [];
    this.slot.hangUp();
    if (!this.stream.destroyed) this.closeStream(this.stream, reason);
    this.kick();
    if (this.inFlight > 0 && this.settle() === 0) this.endAfterWrites = reason; // a graceful close still writes from the ring
    else this.onEnd(this, reason);
  }
}
