// The one seam between an initiator and whatever carries its SCSI commands.
//
// A framed byte stream (TCP, serial; host/framed.ts) and the in-process queue port
// (hal/channels/inproc.ts) both implement CommandTransport, so the client library, sanctl and the
// tests run unchanged over any of them.

export type TaskAttribute = 'simple' | 'headOfQueue' | 'ordered';

export interface ScsiCommand {
  /** Logical unit number, 0–16383. LUN 0 is the command device. */
  lun: number;
  /** Command descriptor block, 6–32 bytes. */
  cdb: Uint8Array;
  /** Data-out: the bytes to send (WRITE, management OUT). */
  dataOut?: Uint8Array;
  /** Data-in: how many bytes the host is ready to receive (READ, INQUIRY, ...). */
  dataInLength?: number;
  /**
   * Data-in: where to put it (at least dataInLength bytes), so that a caller reading in a loop
   * reuses one buffer; the result's data is then a view of it. Without it, each result gets a
   * buffer of its own.
   */
  dataIn?: Uint8Array;
  taskAttribute?: TaskAttribute;
}

export interface ScsiResult {
  /** SCSI status byte: 0x00 GOOD, 0x02 CHECK CONDITION, 0x08 BUSY, 0x28 TASK SET FULL. */
  status: number;
  /** Data-in actually received (length = dataInLength - residual, for data-in commands). */
  data: Uint8Array;
  /** Fixed-format sense data when status is CHECK CONDITION, else empty. */
  sense: Uint8Array;
  /** Residual count in bytes: expected minus transferred (underflow) or the excess (overflow). */
  residual: number;
  residualOverflow: boolean;
}

export interface CommandTransport {
  /** Sends one command; resolves when its response arrives. Many may be outstanding at once. */
  submit(command: ScsiCommand): Promise<ScsiResult>;
  /** Commands the transport will keep outstanding at once (further submits queue in the transport). */
  readonly queueDepth: number;
  /** Human description: "tcp://127.0.0.1:7450", "serial:///dev/pts/3", "inproc://array0/fe2". */
  readonly target: string;
  close(): Promise<void>;
}

/** A transport-level failure (connection lost, frame rejected for a command): not a SCSI status. */
export class TransportError extends Error {
  constructor(message: string, readonly code: string) {
    super(message);
    this.name = 'TransportError';
  }
}
