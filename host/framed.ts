// The initiator side of the framed protocol (docs/protocol.md, "Exchanges") over any byte stream:
// a TCP socket, a serial port, or one end of an in-test Duplex pair.
//
// Each command is an exchange under its own tag: CMD out, then XFER_RDY bursts answered with
// DATA_OUT, DATA_IN assembled by offset, and RSP to finish. Up to queueDepth exchanges are
// outstanding; further submits wait in order. Failures are TransportErrors, never SCSI statuses:
// a REJECT of one of our frames fails its command, a REJECT we cannot attribute or a hang-up fails
// every command on the connection.
//
// A command that failed on our side while the array may still answer it (a DATA_OUT rejected, a
// frame from the array lost) keeps its tag reserved until its RSP arrives, so a late answer never
// lands on a new command. Reserved tags do not count against the queue depth.
//
// The path of a command allocates little, as the initiator is the busier end of a TCP connection
// (docs/bench.md, "Initiator optimisations"): the frames of a tick are encoded straight into one
// outbox slab and leave in one write; frames received are handled in place (FrameDecoder.feed),
// data-in copied once, into the caller's dataIn when it gives one; one timer per connection
// watches for silence, and a TIMEOUT error is built only when one fires.

import type { Duplex } from 'stream';
import { CommandTransport, ScsiCommand, ScsiResult, TransportError } from '../lib/transport';
import {
  FrameDecoder, FrameHeader, Frame, FrameView, FrameSink, FrameType, RejectReason, DecodeError, BROADCAST, HOST_ADDRESS, MAX_PAYLOAD,
  HEADER_END, FRAME_OVERHEAD, MAX_FRAME, FLAG_LAST, FLAG_RESET, CommandFields, encodeFrameInto, beginFrame, endFrame, encodeCommandInto, checkCommand,
  encodeReject, decodeResponseAt, decodeReject, decodeHeader, copyFrame, rejectReasonName, frameTypeName, ScsiStatus,
} from '../lib/protocol';

export interface FramedOptions {
  /** Commands kept outstanding at once (default 64; the controller's session allows 128). */
  queueDepth?: number;
  /** Our address, the source of every frame (default 0x0100). */
  address?: number;
  /** The array's port address (default FFFF: whoever is at the other end). */
  destination?: number;
  /** How the target is named in messages ("tcp://127.0.0.1:7450"). */
  target?: string;
  /**
   * A command that hears nothing from the array for this long fails with TIMEOUT (a serial line
   * can lose a frame without a word). Default 60000; 0: wait for ever.
   */
  timeoutMs?: number;
  /**
   * Closes the stream when the stream's destroy() does not (a SerialPort must be close()d to let
   * go of its device). Resolves once it is closed.
   */
  closeStream?: (stream: Duplex) => Promise<void>;
  /** Serial targets: how the line is resynchronised when it is opened (resynchronise()). */
  resync?: ResyncOptions;
  /**
   * Runs the silence watch's tick every `everyMs` (default: setInterval). Tests pass their own to
   * drive the watch by hand, so that a TIMEOUT test does not depend on how busy the machine is.
   */
  ticker?: (tick: () => void, everyMs: number) => { stop(): void };
}

/** Frame-level events on the connection, counted (the decoder's errors are in decoder.counts). */
export interface FramedCounters {
  framesIn: number;
  framesOut: number;
  rejectsReceived: number;
  wrongDestination: number;
  ignored: number;
  /** Frames dropped while resynchronising a line (answers to an earlier initiator). */
  discarded: number;
}

export interface ResyncOptions {
  /** PINGs sent before giving up (default 3). */
  attempts?: number;
  /** An attempt fails after this long with no frame from the array (default 5000). */
  silenceMs?: number;
}

interface Exchange {
  tag: number;
  command: ScsiCommand;
  resolve: (r: ScsiResult) => void;
  reject: (e: Error) => void;
  /** Frames we have sent in this exchange (the next one's sequence number). */
  sent: number;
  /** Where data-in is assembled: the command's dataIn, or a buffer of its own. */
  data?: Uint8Array;
  received: number;
  /** Ping exchanges: the payload to see echoed. */
  ping?: Buffer;
  /** The sweep count when the last frame of this exchange arrived (or when it started). */
  heard: number;
}

export class FramedTransport implements CommandTransport {
  readonly queueDepth: number;
  readonly target: string;
  readonly decoder = new FrameDecoder();
  readonly counters: FramedCounters = { framesIn: 0, framesOut: 0, rejectsReceived: 0, wrongDestination: 0, ignored: 0, discarded: 0 };
  private readonly address: number;
  private readonly destination: number;
  private readonly closeStream: (stream: Duplex) => Promise<void>;
  private readonly timeoutMs: number;
  private readonly active = new Map<number, Exchange>();
  /** Tags of failed commands the array may still answer. */
  private readonly reserved = new Set<number>();
  private readonly waiting: (() => void)[] = [];
  private readonly outbox: Outbox;
  private readonly sink: FrameSink = { frame: (f) => this.frame(f), error: (e) => this.badFrame(e) };
  private receiving = false;
  /** Chunks that arrived while one was being handled. */
  private readonly backlog: Buffer[] = [];
  private nextTag = 0;
  private closedBy?: TransportError;
  /** While resynchronising: the payload of the PING whose PONG ends it, and when a frame last came. */
  private sync?: { nonce: Buffer; heard: number; end: (ok: boolean) => void };
  /**
   * Silence is watched by one timer for the connection, not one per command: it counts sweeps
   * every sweepMs while commands are outstanding, and a command whose last frame is more than
   * silentSweeps sweeps old has heard nothing for at least timeoutMs (never less: a late timer only
   * makes the count lag). Its error is built only then.
   */
  private sweepTimer?: { stop(): void };
  private readonly ticker: (tick: () => void, everyMs: number) => { stop(): void };
  private sweeps = 0;
  private readonly sweepMs: number;
  private readonly silentSweeps: number;

  constructor(private readonly stream: Duplex, options: FramedOptions = {}) {
    this.queueDepth = options.queueDepth ?? 64;
    if (!Number.isInteger(this.queueDepth) || this.queueDepth < 1 || this.queueDepth > 4096) {
      throw new RangeError(`queueDepth must be 1-4096, got ${this.queueDepth}`);
    }
    this.address = options.address ?? HOST_ADDRESS;
    this.destination = options.destination ?? BROADCAST;
    this.target = options.target ?? 'stream';
    this.closeStream = options.closeStream ?? destroyStream;
    this.outbox = new Outbox(stream);
    this.timeoutMs = options.timeoutMs ?? 60000;
    this.sweepMs = Math.max(1, Math.min(1000, Math.ceil(this.timeoutMs / 4)));
    this.silentSweeps = Math.ceil(this.timeoutMs / this.sweepMs);
    this.ticker = options.ticker ?? intervalTicker;
    stream.on('data', (chunk: Buffer) => this.receive(chunk));
    stream.on('error', (e: Error) => this.hangUp(new TransportError(`${this.target}: ${e.message}`, 'IO')));
    stream.on('end', () => this.hangUp(new TransportError(`${this.target}: the array closed the connection`, 'CLOSED')));
    stream.on('close', () => this.hangUp(new TransportError(`${this.target}: connection closed`, 'CLOSED')));
  }

  /** Commands in flight (not counting reserved tags). */
  get outstanding(): number {
    return this.active.size;
  }

  submit(command: ScsiCommand): Promise<ScsiResult> {
    const dataOut = command.dataOut?.length ?? 0;
    const dataIn = command.dataInLength ?? 0;
    const fields: CommandFields = {
      lun: command.lun,
      cdb: command.cdb,
      taskAttribute: command.taskAttribute ?? 'simple',
      dataOut: dataOut > 0,
      dataIn: dataIn > 0,
      expectedLength: dataOut > 0 ? dataOut : dataIn,
    };
    checkCommand(fields);
    if (command.dataIn && command.dataIn.length < dataIn) {
      return Promise.reject(new TransportError(`${this.target}: dataIn holds ${command.dataIn.length} bytes, less than the ${dataIn} expected`, 'EINVAL'));
    }
    if (this.hasRoom()) return this.open(command, fields);
    fields.cdb = Buffer.from(command.cdb); // the caller may reuse its CDB while this command waits
    return this.whenRoom(command, fields);
  }

  /** PING with `payload` echoed back; resolves with the round-trip time in milliseconds. */
  async ping(payload: Uint8Array = Buffer.from('sanctl ping')): Promise<number> {
    const start = process.hrtime.bigint();
    await this.whenRoom({ lun: 0, cdb: Buffer.alloc(0) }, Buffer.from(payload));
    return Number(process.hrtime.bigint() - start) / 1e6;
  }

  /**
   * Makes a line that others may have used before fit for our exchanges (a serial line: the array
   * keeps one session on it whoever is at the host end; host/connect.ts). MAX_FRAME zero bytes
   * complete whatever partial frame an earlier initiator left in the array's receiver (it rejects
   * that and hunts for the next SOF, skipping the zeros); then a PING with RESET and a payload of
   * our own makes the array drop the earlier initiator's commands. Every frame before its PONG
   * answers someone else and is dropped, and none of theirs can come after it. An attempt that
   * hears nothing for silenceMs is repeated with a new payload; only the last one's PONG counts.
   */
  async resynchronise(options: ResyncOptions = {}): Promise<void> {
    const attempts = options.attempts ?? 3;
    const silenceMs = options.silenceMs ?? 5000;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (this.closedBy) throw this.closedBy;
      const nonce = Buffer.from(`sanctl resync ${process.pid} ${process.hrtime.bigint()} ${attempt}`);
      const synced = new Promise<boolean>((resolve) => {
        const watch = setInterval(() => { if (Date.now() - this.sync!.heard > silenceMs) end(false); }, Math.max(10, silenceMs / 4));
        const end = (ok: boolean): void => { clearInterval(watch); resolve(ok); };
        this.sync = { nonce, heard: Date.now(), end };
      });
      const zeros = this.outbox.room(MAX_FRAME);
      zeros.fill(0, this.outbox.end, this.outbox.end + MAX_FRAME);
      this.outbox.commit(this.outbox.end + MAX_FRAME);
      const tag = (Math.random() * 0x10000) >>> 0;
      this.send({ type: FrameType.PING, flags: FLAG_RESET, tag, source: this.address, destination: this.destination, sequence: 0, offset: 0, parameter: 0 }, nonce);
      if (await synced) { this.sync = undefined; return; }
    }
    this.sync = undefined;
    if (this.closedBy) throw this.closedBy;
    throw new TransportError(`${this.target}: no answer to ${attempts} PINGs (each given ${silenceMs / 1000} s of silence): is the array's port at the other end?`, 'CONNECT');
  }

  async close(): Promise<void> {
    this.outbox.flush();
    this.hangUp(new TransportError(`${this.target}: closed by the host`, 'CLOSED'));
    if (!this.stream.destroyed) await this.closeStream(this.stream);
  }

  // ---- Exchanges ----------------------------------------------------------------------------------

  private hasRoom(): boolean {
    return !this.closedBy && this.active.size < this.queueDepth && this.waiting.length === 0;
  }

  /** Opens the exchange once a queue slot is free. */
  private async whenRoom(command: ScsiCommand, fieldsOrPing: CommandFields | Buffer): Promise<ScsiResult> {
    while (this.active.size >= this.queueDepth && !this.closedBy) await new Promise<void>((r) => this.waiting.push(r));
    if (this.closedBy) throw this.closedBy;
    return this.open(command, fieldsOrPing);
  }

  /**
   * Starts an exchange: a tag, its CMD frame (or a PING, given its payload) into the outbox, the
   * silence watch. A frame that cannot be encoded rejects before the exchange exists.
   */
  private open(command: ScsiCommand, fieldsOrPing: CommandFields | Buffer): Promise<ScsiResult> {
    return new Promise<ScsiResult>((resolve, reject) => {
      const ex: Exchange = { tag: this.allocateTag(), command, resolve, reject, sent: 0, received: 0, heard: this.sweeps };
      if (Buffer.isBuffer(fieldsOrPing)) {
        ex.ping = fieldsOrPing;
        this.send(this.header(ex, FrameType.PING, 0, 0), fieldsOrPing);
      } else {
        const length = 16 + fieldsOrPing.cdb.length;
        const b = this.outbox.room(FRAME_OVERHEAD + length);
        const at = this.outbox.end;
        beginFrame(b, at, this.header(ex, FrameType.CMD, 0, 0), length);
        encodeCommandInto(b, at + HEADER_END, fieldsOrPing);
        this.outbox.commit(endFrame(b, at, length));
        this.counters.framesOut++;
      }
      this.active.set(ex.tag, ex);
      if (this.timeoutMs > 0 && !this.sweepTimer) this.sweepTimer = this.ticker(() => this.sweep(), this.sweepMs);
    });
  }

  private allocateTag(): number {
    for (;;) {
      const tag = this.nextTag;
      this.nextTag = (tag + 1) & 0xffff;
      if (!this.active.has(tag) && !this.reserved.has(tag)) return tag;
    }
  }

  private header(ex: Exchange, type: number, flags: number, offset: number): FrameHeader {
    return { type, flags, tag: ex.tag, source: this.address, destination: this.destination, sequence: ex.sent++ & 0xffff, offset, parameter: 0 };
  }

  /** One frame into the outbox: it leaves with the others of this tick. */
  private send(header: FrameHeader, payload: Uint8Array): void {
    const b = this.outbox.room(FRAME_OVERHEAD + payload.length);
    this.outbox.commit(encodeFrameInto(b, this.outbox.end, header, payload));
    this.counters.framesOut++;
  }

  /** Ends an exchange: frees its queue slot, and keeps its tag reserved if the array may still answer. */
  private finish(ex: Exchange, outcome: ScsiResult | Error, keepTag = false): void {
    if (this.active.get(ex.tag) !== ex) return;
    this.active.delete(ex.tag);
    if (keepTag) this.reserved.add(ex.tag);
    if (outcome instanceof Error) ex.reject(outcome);
    else ex.resolve(outcome);
    this.waiting.shift()?.();
  }

  /** One tick of the silence watch; stops itself when nothing is outstanding. */
  private sweep(): void {
    this.sweeps++;
    if (this.active.size === 0) {
      this.sweepTimer?.stop();
      this.sweepTimer = undefined;
      return;
    }
    for (const ex of [...this.active.values()]) {
      if (this.sweeps - ex.heard <= this.silentSweeps) continue;
      this.finish(ex, new TransportError(`${this.target}: tag ${ex.tag}: no answer from the array in ${this.timeoutMs / 1000} s`, 'TIMEOUT'), true);
    }
  }

  private hangUp(error: TransportError): void {
    if (this.closedBy) return;
    this.closedBy = error;
    this.sync?.end(false);
    this.sweepTimer?.stop();
    this.sweepTimer = undefined;
    for (const ex of [...this.active.values()]) this.finish(ex, error);
    this.reserved.clear();
    for (const wake of this.waiting.splice(0)) wake();
  }

  // ---- Receiving --------------------------------------------------------------------------------------

  /**
   * Bytes from the array. Called for each 'data' event of the stream; a stream that reads into a
   * buffer of its own instead (a socket's onread, host/connect.ts) calls it directly: the chunk is
   * used only during the call.
   *
   * Frames are handled in place, as the decoder finds them in the chunk. A chunk that arrives
   * while one is being handled (an in-test pair answers from inside our write) waits its turn,
   * copied, so frames are handled in stream order and the decoder is never re-entered.
   */
  receive(chunk: Buffer): void {
    if (this.receiving) {
      this.backlog.push(Buffer.from(chunk));
      return;
    }
    this.receiving = true;
    try {
      this.decoder.feed(chunk, this.sink);
      while (this.backlog.length > 0) this.decoder.feed(this.backlog.shift()!, this.sink);
    } finally {
      this.receiving = false;
    }
  }

  /** While resynchronising: only the PONG to our last PING counts; everything before it answers someone else. */
  private resyncFrame(f: FrameView): void {
    const sync = this.sync!;
    sync.heard = Date.now();
    const ours = f.type === FrameType.PONG && (f.flags & FLAG_RESET) !== 0 && (f.destination === this.address || f.destination === BROADCAST)
      && payloadOf(f).equals(sync.nonce);
    if (ours) sync.end(true);
    else this.counters.discarded++;
  }

  /** A frame from the array we could not read: the command it names can no longer complete whole. */
  private badFrame(e: DecodeError): void {
    if (this.sync) { this.sync.heard = Date.now(); this.counters.discarded++; return; }
    if (!e.header || e.error === 'oversize') return;
    const ex = this.active.get(e.header.readUInt16BE(2));
    if (ex) this.finish(ex, new TransportError(`${this.target}: a frame of tag ${ex.tag} arrived damaged (${e.error})`, 'BAD_FRAME'), true);
  }

  private frame(f: FrameView): void {
    this.counters.framesIn++;
    if (this.sync) { this.resyncFrame(f); return; }
    if (f.destination !== this.address && f.destination !== BROADCAST) {
      this.counters.wrongDestination++;
      return;
    }
    if (f.type === FrameType.REJECT) { this.rejected(copyFrame(f)); return; }
    if (f.type === FrameType.PING) {
      const pong: FrameHeader = { type: FrameType.PONG, flags: f.flags, tag: f.tag, source: this.address, destination: f.source, sequence: 0, offset: f.offset, parameter: f.parameter };
      this.send(pong, payloadOf(f));
      return;
    }
    const ex = this.active.get(f.tag);
    if (!ex) {
      if (f.type === FrameType.RSP) this.reserved.delete(f.tag);
      else this.counters.ignored++;
      return;
    }
    ex.heard = this.sweeps;
    switch (f.type) {
      case FrameType.XFER_RDY: this.transferReady(ex, f); return;
      case FrameType.DATA_IN: this.dataIn(ex, f); return;
      case FrameType.RSP: this.response(ex, f); return;
      case FrameType.PONG: this.pong(ex, f); return;
      default: this.protocolError(ex, `${frameTypeName(f.type)} is not for the host`, f);
    }
  }

  private transferReady(ex: Exchange, f: FrameView): void {
    const data = ex.command.dataOut;
    const end = f.offset + f.parameter;
    if (!data || f.parameter === 0 || end > data.length) {
      this.protocolError(ex, `XFER_RDY asks for [${f.offset}, ${end}) of ${data?.length ?? 0} bytes of data-out`, f);
      return;
    }
    // The whole burst into the outbox at once: DATA_OUT frames of at most MAX_PAYLOAD bytes, LAST on the final one.
    const frames = Math.ceil(f.parameter / MAX_PAYLOAD);
    const burst = this.outbox.room(f.parameter + frames * FRAME_OVERHEAD);
    let at = this.outbox.end;
    for (let offset = f.offset; offset < end; offset += MAX_PAYLOAD) {
      const n = Math.min(MAX_PAYLOAD, end - offset);
      const flags = offset + n === end ? FLAG_LAST : 0;
      at = encodeFrameInto(burst, at, this.header(ex, FrameType.DATA_OUT, flags, offset), data.subarray(offset, offset + n));
    }
    this.outbox.commit(at);
    this.counters.framesOut += frames;
  }

  /** Data-in goes straight from the received bytes to where the result will hold it: one copy. */
  private dataIn(ex: Exchange, f: FrameView): void {
    const expected = ex.command.dataInLength ?? 0;
    if (f.offset + f.length > expected) {
      this.protocolError(ex, `DATA_IN [${f.offset}, ${f.offset + f.length}) is beyond the ${expected} bytes expected`, f);
      return;
    }
    ex.data ??= ex.command.dataIn ?? Buffer.alloc(expected);
    f.bytes.copy(ex.data, f.offset, f.payloadAt, f.payloadAt + f.length);
    ex.received += f.length;
  }

  private response(ex: Exchange, f: FrameView): void {
    const r = decodeResponseAt(f.bytes, f.payloadAt, f.length);
    if (!r) { this.protocolError(ex, `RSP payload of ${f.length} bytes is malformed`, f); return; }
    const expected = ex.command.dataInLength ?? 0;
    const transferred = r.underflow ? Math.max(0, expected - r.residual) : expected;
    if (expected > 0 && r.status === ScsiStatus.GOOD && ex.received !== transferred) {
      this.finish(ex, new TransportError(`${this.target}: tag ${ex.tag}: received ${ex.received} of ${transferred} bytes of data-in`, 'DATA_LOST'));
      return;
    }
    const data = ex.data ?? EMPTY;
    const length = Math.min(data.length, r.status === ScsiStatus.GOOD ? transferred : ex.received);
    this.finish(ex, {
      status: r.status,
      data: length === data.length ? data : data.subarray(0, length),
      sense: r.sense,
      residual: r.residual,
      residualOverflow: r.overflow,
    });
  }

  private pong(ex: Exchange, f: FrameView): void {
    if (!ex.ping) { this.protocolError(ex, 'PONG answers a command', f); return; }
    const echoed = Buffer.from(payloadOf(f));
    const same = echoed.equals(ex.ping);
    this.finish(ex, same ? { status: 0, data: echoed, sense: EMPTY, residual: 0, residualOverflow: false }
      : new TransportError(`${this.target}: PONG echoed other bytes than the PING carried`, 'PROTOCOL'));
  }

  /** The array broke the exchange rules: tell it, fail the command, keep the tag until its RSP. */
  private protocolError(ex: Exchange, what: string, f: FrameView): void {
    const payload = encodeReject({ reason: RejectReason.PROTOCOL, header: f.bytes.subarray(f.payloadAt - 20, f.payloadAt) });
    this.send({ type: FrameType.REJECT, flags: 0, tag: f.tag, source: this.address, destination: f.source, sequence: 0, offset: 0, parameter: 0 }, payload);
    this.finish(ex, new TransportError(`${this.target}: tag ${ex.tag}: ${what}`, 'PROTOCOL'), f.type !== FrameType.RSP);
  }

  /** The array refused one of our frames. */
  private rejected(f: Frame): void {
    this.counters.rejectsReceived++;
    const r = decodeReject(f.payload);
    const reason = r ? rejectReasonName(r.reason) ?? `reason ${r.reason}` : 'malformed REJECT';
    if (r?.reason === RejectReason.PORT_FULL) {
      // The port refused the connection (no session free): nothing we sent was taken.
      this.hangUp(new TransportError(`${this.target}: ${r.text ?? 'the port has no free session'}`, 'REJECT_PORT_FULL'));
      return;
    }
    const ex = this.active.get(f.tag);
    if (!ex) {
      // Some frame of ours is lost and we cannot tell whose command it was: none can be trusted.
      this.hangUp(new TransportError(`${this.target}: the array rejected a frame of no command of ours (${reason}, tag ${f.tag})${r?.text ? `: ${r.text}` : ''}`, 'REJECT'));
      void this.closeStream(this.stream).catch(() => undefined);
      return;
    }
    // A rejected DATA_OUT leaves a command the array ends with its own RSP; anything else never started.
    const ofDataOut = r !== null && decodeHeader(r.header).type === FrameType.DATA_OUT;
    this.finish(ex, new TransportError(`${this.target}: the array rejected a frame of tag ${ex.tag}: ${reason}`, `REJECT_${reason}`), ofDataOut);
  }
}

const EMPTY = Buffer.alloc(0);

function intervalTicker(tick: () => void, everyMs: number): { stop(): void } {
  const timer = setInterval(tick, everyMs);
  return { stop: () => clearInterval(timer) };
}

/** The payload of a frame in place (a view: valid while the frame is). */
function payloadOf(f: FrameView): Buffer {
  return f.bytes.subarray(f.payloadAt, f.payloadAt + f.length);
}

/** Bytes of an outbox slab: the frames of a tick's many commands (a CMD frame is 58 bytes). */
const OUTBOX_SLAB_BYTES = 64 * 1024;

/**
 * The frames of one tick of the event loop leave in one stream.write — one system call on a
 * socket instead of one per frame. They are encoded straight into a slab, and what was encoded
 * since the last write goes to the stream on process.nextTick: after the promise callbacks of the
 * tick, where a caller submits its next commands. Bytes handed to the stream are never written
 * again (it may hold them until the kernel takes them): a full slab is replaced, not reused.
 */
class Outbox {
  private slab = Buffer.allocUnsafeSlow(OUTBOX_SLAB_BYTES);
  private start = 0;
  /** Where the next frame goes in the slab room() returns. */
  end = 0;
  private scheduled = false;
  private readonly flushTick = (): void => {
    this.scheduled = false;
    this.flush();
  };

  constructor(private readonly stream: Duplex) {}

  /** The slab with at least `bytes` free at `end`; encode there, then commit(). */
  room(bytes: number): Buffer {
    while (this.end + bytes > this.slab.length) {
      // The state first: a stream that answers within write() (an in-test pair) sends more frames from there.
      const full = this.slab.subarray(this.start, this.end);
      this.slab = Buffer.allocUnsafeSlow(Math.max(OUTBOX_SLAB_BYTES, bytes));
      this.start = this.end = 0;
      this.write(full);
    }
    if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(this.flushTick);
    }
    return this.slab;
  }

  /** Frames are encoded up to `end`. */
  commit(end: number): void {
    this.end = end;
  }

  /** Hands what is encoded to the stream now. */
  flush(): void {
    if (this.end === this.start) return;
    const bytes = this.slab.subarray(this.start, this.end);
    this.start = this.end;
    this.write(bytes);
  }

  private write(bytes: Buffer): void {
    if (bytes.length > 0 && this.stream.writable) this.stream.write(bytes);
  }
}

function destroyStream(stream: Duplex): Promise<void> {
  return new Promise((resolve) => {
    stream.once('close', () => resolve());
    stream.destroy();
  });
}
