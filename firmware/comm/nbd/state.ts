// The state an NBD port keeps (the NBD project's doc/proto.md): one NbdSession per connection slot,
// in the port's kind-specific session area (channel.ts portExtState), and one NbdTask per command,
// in the context's transport area (ctx.ts CX_TRANSPORT). An NBD request becomes one SCSI command
// of the volume's LUN on this port, or a run of them one after another (a WRITE_ZEROES of more
// than one command's worth; TRIM of a thick volume runs none, request.ts; BLOCK_STATUS is one GET LBA STATUS); the task carries the request's handle and what is left to do.
import { CX_TRANSPORT, CX_TRANSPORT_BYTES } from "../../ctx";
import { portExtState } from "../../channel";

// Session phases.
export const NP_GREETING: u32 = 0; // the server's greeting is still to be sent
export const NP_CLIENT_FLAGS: u32 = 1; // waiting for the client's 32 bits of flags
export const NP_OPTIONS: u32 = 2; // option haggling (fixed newstyle)
export const NP_TRANSMISSION: u32 = 3; // requests and replies
export const NP_CLOSING: u32 = 4; // NBD_CMD_DISC or NBD_OPT_ABORT: outstanding requests end, then the connection
export const NP_DEAD: u32 = 5; // nothing more is read; the binding closes the connection

@unmanaged export class NbdSession {
  phase: u32;
  clientFlags: u32; // NBD_FLAG_C_* the client sent
  structured: u32; // 1: structured replies negotiated
  lun: u32; // transmission: the export's LUN on this port
  volume: u32; // transmission: the export's volume
  blockSize: u32;
  readOnly: u32; // 1: the access list lets this client read only
  skip: u32; // bytes to read past as they arrive: a refused option's data, a refused write's payload
  payloadLeft: u32; // bytes of a WRITE's payload still to come for payloadTag
  payloadTag: u32; // the command (internal tag) whose payload is arriving
  payloadAt: u32; // offset in that command's data of the next payload byte
  tagNext: u32; // internal tags for the sequencer: handles are 64 bits, the tag table 32
  listNext: u32; // NBD_OPT_LIST: the next volume to describe (0: not listing)
  listOption: u32; // the option being answered by the listing (NBD_OPT_LIST)
  txBusy: u32; // simple replies: context index + 1 of the read whose reply is half sent (nothing else may go out)
  meta: u32; // 1: NBD_OPT_SET_META_CONTEXT selected base:allocation (NBD_CMD_BLOCK_STATUS may be sent)
  metaVolume: u32; // the volume + 1 of the export SET_META_CONTEXT named (a GO for another clears meta)
  handle: u64; // the handle of the request being taken in (an answer without a context uses it)
  exportBytes: u64;
  volumeId: u32; // transmission: the export volume's VOLE_ID, so a volume created later with its name, number and LUN is not taken for it
}

// ---- Wire constants (proto.md) --------------------------------------------------------------------
export const NBDMAGIC: u64 = 0x4e42444d41474943; // "NBDMAGIC"
export const IHAVEOPT: u64 = 0x49484156454f5054; // "IHAVEOPT"
export const OPTION_REPLY_MAGIC: u64 = 0x0003e889045565a9;
export const REQUEST_MAGIC: u32 = 0x25609513;
export const SIMPLE_REPLY_MAGIC: u32 = 0x67446698;
export const STRUCTURED_REPLY_MAGIC: u32 = 0x668e33ef;

// Handshake flags (server) and client flags.
export const FLAG_FIXED_NEWSTYLE: u32 = 1;
export const FLAG_NO_ZEROES: u32 = 2;
export const FLAG_C_FIXED_NEWSTYLE: u32 = 1;
export const FLAG_C_NO_ZEROES: u32 = 2;

// Transmission flags.
export const TF_HAS_FLAGS: u32 = 1;
export const TF_READ_ONLY: u32 = 2;
export const TF_SEND_FLUSH: u32 = 4;
export const TF_SEND_FUA: u32 = 8;
export const TF_SEND_TRIM: u32 = 32;
export const TF_SEND_WRITE_ZEROES: u32 = 64;
export const TF_CAN_MULTI_CONN: u32 = 256;

// Options.
export const OPT_EXPORT_NAME: u32 = 1;
export const OPT_ABORT: u32 = 2;
export const OPT_LIST: u32 = 3;
export const OPT_STARTTLS: u32 = 5;
export const OPT_INFO: u32 = 6;
export const OPT_GO: u32 = 7;
export const OPT_STRUCTURED_REPLY: u32 = 8;
export const OPT_LIST_META_CONTEXT: u32 = 9;
export const OPT_SET_META_CONTEXT: u32 = 10;

// Option replies.
export const REP_ACK: u32 = 1;
export const REP_SERVER: u32 = 2;
export const REP_INFO: u32 = 3;
export const REP_META_CONTEXT: u32 = 4;
export const REP_ERR_UNSUP: u32 = 0x80000001;
export const REP_ERR_POLICY: u32 = 0x80000002;
export const REP_ERR_INVALID: u32 = 0x80000003;
export const REP_ERR_UNKNOWN: u32 = 0x80000006;
export const REP_ERR_TOO_BIG: u32 = 0x80000009;

// Information types (NBD_OPT_INFO, NBD_OPT_GO).
export const INFO_EXPORT: u32 = 0;
export const INFO_NAME: u32 = 1;
export const INFO_DESCRIPTION: u32 = 2;
export const INFO_BLOCK_SIZE: u32 = 3;

// Requests and their flags.
export const CMD_READ: u32 = 0;
export const CMD_WRITE: u32 = 1;
export const CMD_DISC: u32 = 2;
export const CMD_FLUSH: u32 = 3;
export const CMD_TRIM: u32 = 4;
export const CMD_CACHE: u32 = 5;
export const CMD_WRITE_ZEROES: u32 = 6;
export const CMD_BLOCK_STATUS: u32 = 7;
export const CMD_FLAG_FUA: u32 = 1;
export const CMD_FLAG_NO_HOLE: u32 = 2;
export const CMD_FLAG_REQ_ONE: u32 = 8;

// Structured reply chunks.
export const REPLY_FLAG_DONE: u32 = 1;
export const REPLY_TYPE_NONE: u32 = 0;
export const REPLY_TYPE_OFFSET_DATA: u32 = 1;
export const REPLY_TYPE_BLOCK_STATUS: u32 = 5;
export const REPLY_TYPE_ERROR: u32 = 0x8001;
export const REPLY_TYPE_ERROR_OFFSET: u32 = 0x8002;

// The one metadata context served: "base:allocation" (proto.md), its id, and its extent flags.
export const META_ALLOCATION_ID: u32 = 1;
export const STATE_HOLE: u32 = 1;
export const STATE_ZERO: u32 = 2;

// Error values.
export const NBD_EPERM: u32 = 1;
export const NBD_EIO: u32 = 5;
export const NBD_EINVAL: u32 = 22;
export const NBD_ENOSPC: u32 = 28;
export const NBD_EOVERFLOW: u32 = 75;

export const OPTION_HEADER_BYTES: u32 = 16;
export const REQUEST_BYTES: u32 = 28;
/** The largest option data taken (an NBD_OPT_GO with a 4096-byte name and every information request). */
export const OPTION_DATA_MAX: u32 = 4096 + 64;
/** The most one READ or WRITE may move (NBD_INFO_BLOCK_SIZE's maximum payload): one SCSI command's. */
export const MAX_PAYLOAD: u32 = 32 << 20;

// Task flags (NbdTask.flags).
export const TK_HEADER_SENT: u32 = 1; // simple reply: the reply header went out before the data
export const TK_DONE_SENT: u32 = 2; // the final chunk (or the whole simple reply) went out with the data
export const TK_ZEROES: u32 = 4; // the data-out is zeros made here (WRITE_ZEROES), not the client's payload
export const TK_FROM_PAYLOAD: u32 = 8; // the data-out comes from the request's payload in the rx ring
export const TK_UNMAP: u32 = 16; // TRIM, or WRITE_ZEROES without NO_HOLE, of a thin volume: WRITE SAME (16) with UNMAP and NDOB (its blocks deallocated, reading zeros)

@unmanaged export class NbdTask {
  handle: u64;
  offset: u64; // bytes: where the next piece of a chained request starts
  left: u64; // bytes of a chained request still to do after this piece
  type: u32; // CMD_*
  flags: u32; // TK_*
  cmdFlags: u32; // the request's CMD_FLAG_*
  start: u64; // the request's offset (structured read chunks carry absolute offsets)
}

// @ts-ignore: decorator
@inline export function task(c: usize): NbdTask { return changetype<NbdTask>(c + CX_TRANSPORT); }

export const NBD_SESSION_BYTES: u32 = 128;

// @ts-ignore: decorator
@inline export function sessionAt(port: u32, s: u32): usize { return portExtState(port, s, NBD_SESSION_BYTES); }
// @ts-ignore: decorator
@inline export function session(port: u32, s: u32): NbdSession { return changetype<NbdSession>(sessionAt(port, s)); }

/** Checked when a session opens (assert): both views fit their areas. */
export function nbdStateFits(): bool { return offsetof<NbdTask>() <= CX_TRANSPORT_BYTES && offsetof<NbdSession>() <= NBD_SESSION_BYTES; }
