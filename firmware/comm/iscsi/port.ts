// What an iSCSI port is told by its topology (config block, port extension table) and what its
// binding learns (the TCP port it listens on, each connection's local address).
import {
  CONFIG_ADDR, CFG_PORT_EXT_TABLE, CFG_PORT_EXT_BYTES, CPX_TARGET_NAME, CPX_HOST, CPX_CHAP_USER,
  CPX_CHAP_SECRET, CPX_MUTUAL_USER, CPX_MUTUAL_SECRET, CPX_PING_MS, CPX_NAME_BYTES, CPX_CHAP_BYTES,
  CPORT_RX_BYTES, MAP_ADDR, MAP_PORT_TABLE, MAP_PORT_BYTES, MPORT_LISTEN_PORT, SES_LOCAL_ADDR, SES_LOCAL_ADDR_BYTES,
} from "../../abi";
import { cfgPort } from "../../config";
import { sessionDesc } from "../../channel";
import { sameBytes } from "./text";

/** The largest data segment we take (our MaxRecvDataSegmentLength): a whole PDU must fit the rx ring. */
export const RECV_LIMIT_MAX: u32 = 262144;
/** During login, before anything is declared: RFC 7143's default MaxRecvDataSegmentLength. */
export const LOGIN_RECV_LIMIT: u32 = 8192;
/** What we offer for MaxBurstLength: one data-out window of the sequencer. */
export const OUR_MAX_BURST: u32 = 262144;
/** What we offer for FirstBurstLength: the unsolicited data a command may bring before its first R2T. */
export const OUR_FIRST_BURST: u32 = 65536;

// @ts-ignore: decorator
@inline export function portExt(port: u32): usize { return CONFIG_ADDR + CFG_PORT_EXT_TABLE + port * CFG_PORT_EXT_BYTES; }

/** Length of the NUL-terminated string at p, at most max. */
export function strLen(p: usize, max: u32): u32 {
  let n: u32 = 0;
  while (n < max && load<u8>(p + n) != 0) n++;
  return n;
}

// @ts-ignore: decorator
@inline export function targetName(port: u32): usize { return portExt(port) + CPX_TARGET_NAME; }
export function targetNameLen(port: u32): u32 { return strLen(targetName(port), CPX_NAME_BYTES); }
/** Do the vn bytes at v name the port's target? */
export function isTargetName(port: u32, v: usize, vn: u32): bool { return vn == targetNameLen(port) && sameBytes(v, targetName(port), vn); }
// @ts-ignore: decorator
@inline export function chapUser(port: u32): usize { return portExt(port) + CPX_CHAP_USER; }
// @ts-ignore: decorator
@inline export function chapSecret(port: u32): usize { return portExt(port) + CPX_CHAP_SECRET; }
// @ts-ignore: decorator
@inline export function mutualUser(port: u32): usize { return portExt(port) + CPX_MUTUAL_USER; }
// @ts-ignore: decorator
@inline export function mutualSecret(port: u32): usize { return portExt(port) + CPX_MUTUAL_SECRET; }
export function chapLen(p: usize): u32 { return strLen(p, CPX_CHAP_BYTES); }
/** The port requires CHAP of every initiator. */
export function chapRequired(port: u32): bool { return load<u8>(chapUser(port)) != 0; }
export function pingNs(port: u32): f64 { return <f64>load<u32>(portExt(port) + CPX_PING_MS) * 1e6; }

/** Our MaxRecvDataSegmentLength: half the rx ring (a PDU is parsed in place), at most RECV_LIMIT_MAX. */
export function recvLimit(port: u32): u32 {
  return min<u32>(RECV_LIMIT_MAX, (load<u32>(cfgPort(port) + CPORT_RX_BYTES) >> 1) & ~511);
}

/** The TCP port the binding listens on (0 until it does). */
export function listenPort(port: u32): u32 { return load<u32>(MAP_ADDR + MAP_PORT_TABLE + port * MAP_PORT_BYTES + MPORT_LISTEN_PORT); }

/** The configured listening host (text), and whether it is a wildcard ("0.0.0.0", "::", empty). */
// @ts-ignore: decorator
@inline export function hostText(port: u32): usize { return portExt(port) + CPX_HOST; }
export function hostWildcard(port: u32): bool {
  const h = hostText(port);
  const n = strLen(h, 64);
  if (n == 0) return true;
  for (let i: u32 = 0; i < n; i++) {
    const c = load<u8>(h + i);
    if (c != 0x30 && c != 0x2E && c != 0x3A) return false; // only '0', '.', ':'
  }
  return true;
}

/** The connection's local address as its binding saw it (text). */
// @ts-ignore: decorator
@inline export function localAddress(port: u32, s: u32): usize { return sessionDesc(port, s) + SES_LOCAL_ADDR; }
export function localAddressLen(port: u32, s: u32): u32 { return strLen(localAddress(port, s), SES_LOCAL_ADDR_BYTES - 1); }
