// The state an iSCSI port keeps (RFC 7143): one IscsiSession per connection slot (a session has
// exactly one connection: MaxConnections=1), in the port's kind-specific session area (channel.ts
// portExtState), and one IscsiTask per command, in the context's transport area (ctx.ts
// CX_TRANSPORT). Both are typed views of common memory; the byte areas a session needs (names,
// login text) follow its fixed fields at the offsets below.
import { CX_TRANSPORT, CX_TRANSPORT_BYTES } from "../../ctx";
import { portExtState } from "../../channel";

// Session phases.
export const PH_LOGIN: u32 = 0; // login in progress (security or operational stage)
export const PH_FULL: u32 = 1; // full feature phase
export const PH_DEAD: u32 = 2; // logged out, failed or reinstated: nothing more is read; the binding closes it

// Login stages (CSG/NSG of the Login PDUs).
export const STAGE_SECURITY: u32 = 0;
export const STAGE_OPERATIONAL: u32 = 1;
export const STAGE_FULL: u32 = 3;

export const SESSION_UNKNOWN: u32 = 0;
export const SESSION_DISCOVERY: u32 = 1;
export const SESSION_NORMAL: u32 = 2;

// CHAP (RFC 7143 12.1.3) as the target sees it.
export const AUTH_NONE: u32 = 0; // no method agreed yet
export const AUTH_CHOSE_NONE: u32 = 1; // AuthMethod=None agreed
export const AUTH_CHAP_OFFERED: u32 = 2; // AuthMethod=CHAP agreed: waiting for CHAP_A
export const AUTH_CHAP_CHALLENGED: u32 = 3; // CHAP_A/I/C sent: waiting for CHAP_N/R
export const AUTH_DONE: u32 = 4; // the initiator proved it knows the secret (and we answered its challenge)

// Login flags (IscsiSession.login).
export const LF_STARTED: u32 = 1; // the first Login PDU arrived
export const LF_NAME: u32 = 2; // InitiatorName given
export const LF_TARGET: u32 = 4; // TargetName given (and it names this port's target)
export const LF_PORTAL_TAG_SENT: u32 = 8; // TargetPortalGroupTag and TargetAlias declared
export const LF_MRDSL_SENT: u32 = 16; // our MaxRecvDataSegmentLength declared
export const LF_CONTINUED: u32 = 32; // the request text continues in the next PDU (C bit)

@unmanaged export class IscsiSession {
  phase: u32;
  stage: u32; // login: the current stage
  sessionType: u32;
  auth: u32;
  login: u32; // LF_*
  chapId: u32;
  tsih: u32;
  cid: u32;
  loginItt: u32;
  expCmdSN: u32;
  maxCmdSN: u32; // the highest MaxCmdSN advertised: never goes back (RFC 7143 4.2.2.1)
  statSN: u32; // the StatSN of the next response
  headerDigest: u32; // 1: CRC32C on every PDU header
  dataDigest: u32; // 1: CRC32C on every data segment
  sendLimit: u32; // the initiator's MaxRecvDataSegmentLength: the largest data segment we send
  maxBurst: u32;
  firstBurst: u32;
  initialR2T: u32; // 1: Yes
  immediateData: u32; // 1: Yes
  time2Wait: u32;
  time2Retain: u32;
  skip: u32; // bytes of a refused PDU still to be discarded as they arrive
  pingTtt: u32; // the TTT of our NOP-In still unanswered (0: none)
  pingBlockedHead: u32; // the tx ring's head when pingBlockedNs was set: a head that moves is an initiator reading
  tttNext: u32;
  held: u32; // commands held for CmdSN order
  reqLen: u32; // login or text request bytes gathered (C bit)
  respLen: u32; // text response bytes prepared
  respOff: u32; // text response bytes sent so far
  respTtt: u32; // the TTT naming the rest of a text response
  respItt: u32;
  nameLen: u32; // InitiatorName length
  drainItt: u32; // a command answered without a context whose unsolicited data is still to come
  tmfPending: u32; // 1: a task management request waits for the CmdSN gap before it to close
  keys: u32; // K_* bits of the keys in the request text being answered (a key twice in one request is an initiator error)
  pending: u32; // P_* bits: what the final Login Response switches on (digests)
  pendingLimit: u32; // the initiator's MaxRecvDataSegmentLength, in force from full feature phase
  ahead: u64; // bit k: CmdSN expCmdSN + 1 + k arrived already (held, or a non-SCSI request)
  ahead2: u64; // bits 64..127
  isid: u64; // the initiator's ISID (6 bytes, big-endian in the low 48 bits)
  lastRxNs: f64; // when the last PDU arrived (NOP-In pings an idle initiator)
  pingSentNs: f64;
  pingBlockedNs: f64; // since when a ping is due, the tx ring has no room for it and the initiator reads none of it (0: not blocked)
  gapSinceNs: f64; // since when a CmdSN gap holds commands back (0: none)
  loginSinceNs: f64;
}

// Byte areas after the fixed fields.
export const ISS_NAME: u32 = 512; // 224: the InitiatorName
export const ISS_TMF: u32 = 768; // 48: the BHS of a deferred task management request
export const ISS_CHALLENGE: u32 = 832; // 16: our CHAP challenge
export const ISS_BAD: u32 = 864; // 48: the header of a PDU being rejected
export const ISS_PAIR: u32 = 928; // 20: a text pair's position (textNext's output)
export const ISS_REQ: u32 = 1024; // TEXT_BYTES: request key text being gathered
export const ISS_RESP: u32 = ISS_REQ + 8192; // TEXT_BYTES: response key text being sent
export const TEXT_BYTES: u32 = 8192;
export const ISCSI_SESSION_BYTES: u32 = ISS_RESP + TEXT_BYTES;
export const CHALLENGE_BYTES: u32 = 16;

// @ts-ignore: decorator
@inline export function sessionAt(port: u32, s: u32): usize { return portExtState(port, s, ISCSI_SESSION_BYTES); }
// @ts-ignore: decorator
@inline export function session(port: u32, s: u32): IscsiSession { return changetype<IscsiSession>(sessionAt(port, s)); }

// IscsiSession.pending.
export const P_HEADER_DIGEST: u32 = 1;
export const P_DATA_DIGEST: u32 = 2;

// Task flags (IscsiTask.flags).
export const TF_UNSOL_OPEN: u32 = 1; // unsolicited Data-Out still to come (no F bit yet)
export const TF_R2T_OPEN: u32 = 2; // an R2T burst not yet answered in full
export const TF_STATUS_SENT: u32 = 4; // the status went out in the last Data-In (phase collapse)
export const TF_HELD: u32 = 8; // taken in, waiting for CmdSN order
export const TF_DATA_ERROR: u32 = 16; // a Data-Out broke the rules: the task ends with CHECK CONDITION
export const TF_BUSY: u32 = 32; // no buffer memory for its unsolicited data: the task ends BUSY

@unmanaged export class IscsiTask {
  cmdSN: u32;
  flags: u32;
  dataSN: u32; // Data-In PDUs and R2Ts sent (DataSN, R2TSN; ExpDataSN in the response)
  ttt: u32; // the open R2T's Target Transfer Tag
  burstNext: u32; // the next buffer offset expected in the open burst
  burstEnd: u32;
  outDataSN: u32; // the DataSN expected of the next Data-Out of the open burst
  unsolExpected: u32; // unsolicited bytes the initiator sends: immediate + Data-Out with TTT FFFFFFFF
  unsolReceived: u32;
  seqBytes: u32; // bytes of the Data-In sequence being sent (F bit every MaxBurstLength)
  ubufFirst: u32; // buffer granule + 1 holding the unsolicited data until the first window (0: none)
  ubufCount: u32;
  deadlineNs: f64;
}

// @ts-ignore: decorator
@inline export function task(c: usize): IscsiTask { return changetype<IscsiTask>(c + CX_TRANSPORT); }

/** Checked at build time by the assertion in iscsiTaskFits. */
export function iscsiTaskFits(): bool { return offsetof<IscsiTask>() <= CX_TRANSPORT_BYTES && offsetof<IscsiSession>() <= ISS_NAME; }

// Serial number arithmetic (RFC 1982, 32 bits) for CmdSN and StatSN.
// @ts-ignore: decorator
@inline export function snLess(a: u32, b: u32): bool { return <i32>(a - b) < 0; }
