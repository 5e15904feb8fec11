// A framed byte-stream connection (TCP socket, serial port) on a session slot of a stream port
// (docs/hal.md, Channels). Received bytes go into the session's rx ring as they come; when the
// ring is full the stream is paused and the rest waits here until the firmware has made room.
// What the firmware puts into the tx ring is written to the peer; while the peer's socket buffer
// is full (write() returned false) the ring is left alone, and the firmware waits for room.
// When the firmware asks for the connection to be closed (SES_HANGUP, with the tx doorbell), what
// it sent is written out first, then the connection is closed.
import type { Duplex } from 'stream';
import * as A from '../abi';
import { CommonMemory } from '../memory';
import { ByteRing } from '../ring';
import { SessionSlot } from './session';

/** Why a session ended, in words for the harness's log. */
export type HangUpReason = 'peer' | 'stopping' | 'idle' | 'protocol';

export class StreamSession {
  readonly slot: SessionSlot;
  private readonly rx: ByteRing;
  private readonly tx: ByteRing;
  private pending: Buffer[] = [];
  private paused = false;
  private blocked = false;
  private ended = false;

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
    stream.on('close', () => this.hangUp('peer'));
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
    if (!this.blocked) {
      const out = this.tx.take();
      n = out.length;
      if (n > 0 && !this.stream.write(out)) this.blocked = true;
    }
    // The firmware asked to close: at once when idle (a peer that does not read must not keep the
    // slot); after what it sent has been written when its protocol ended the session (an iSCSI
    // Logout Response, a login failure: the peer must get them).
    const why = this.slot.hangupRequest;
    if (why === A.HANGUP_IDLE) this.hangUp('idle');
    else if (why === A.HANGUP_PROTOCOL && !this.blocked) this.hangUp('protocol');
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
    this.onEnd(this, reason);
  }
}
