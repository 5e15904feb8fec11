// Remote pairs on the command device (docs/scsi.md, "Remote pairs"): the REMOTE CREATE parameter
// list, the REMOTE CHANGE operations and the REMOTE STATUS entries, as firmware/scsi/remote.ts
// reads and writes them.
import { management, parseManagementList } from './scsi';

export const RemoteAction = { CREATE: 0x0e, CHANGE: 0x0f, STATUS: 0x18 } as const;
export const RemoteChange = { suspend: 1, resume: 2, failover: 3, delete: 4, 'restart-point': 5 } as const;
export type RemoteChangeName = keyof typeof RemoteChange;
export const REMOTE_STATES = ['simplex', 'copy', 'pair', 'suspended', 'failover', 'creating'] as const;
export type RemoteStateName = typeof REMOTE_STATES[number];
export const REMOTE_REASONS = ['none', 'user', 'link', 'remote', 'relay', 'read', 'restart', 'journal'] as const;
/** Pair modes by number (firmware/remote/pair.ts RM_*). */
/** 4 `async`: 004's ordered asynchronous copy; 5 `snapshot`: document 003's embodiment 8 (docs/remote.md). */
export const REMOTE_MODES = ['none', 'mirror', 'backup', 'delayed', 'async', 'snapshot'] as const;
export type RemoteModeName = Exclude<typeof REMOTE_MODES[number], 'none'>;
/** The peer volume's name travels in each packet: at most this many bytes (docs/remote.md). */
export const PEER_VOLUME_NAME_MAX = 12;

export interface RemoteCreateSpec {
  volume: number;
  /** The peer array's name (a node of the topology). */
  to: string;
  /** Its volume's name. */
  toVolume: string;
  /**
   * A relay's name: packets go through it (embodiments 1-3); several separated by commas (at most
   * 4, 31 bytes in all): embodiment 4, with `policy`. Absent: directly.
   */
  via?: string;
  /** How several relays share the writes (firmware/remote/route.ts); default round-robin. */
  policy?: RoutePolicyName;
  /**
   * delayed: embodiment 7's standby, at the last restart point (`restart-point`) after a failover;
   * async: 004's asynchronous copy (GOOD on local NV, sent in issuing-ID order from a journal).
   */
  mode?: RemoteModeName;
  /** A consistency group (1-255, async only): its pairs share one issuing-ID order. */
  group?: number;
  timeoutMs?: number;
  retries?: number;
  /** Redundancy-processed writes (003 embodiments 5, 6): each block as N data + m parity parts over every link to the peer; direct only. */
  redundancy?: Redundancy;
}

export interface Redundancy { n: number; m: number }
/** Parts of a block at most (the firmware's masks are 32 bits), parity parts at most (the RS kernel's). */
export const REDUNDANCY_MAX_PARTS = 32;
export const REDUNDANCY_MAX_PARITY = 8;

/** "8+2" -> { n: 8, m: 2 }; an error that says what is allowed. */
export function parseRedundancy(v: string): Redundancy {
  const m = /^(\d+)\+(\d+)$/.exec(v.trim());
  const r = m ? { n: Number(m[1]), m: Number(m[2]) } : undefined;
  if (!r || r.n < 1 || r.m > REDUNDANCY_MAX_PARITY || r.n + r.m > REDUNDANCY_MAX_PARTS) {
    throw new Error(`redundancy ${JSON.stringify(v)}: N+m with N >= 1, m <= ${REDUNDANCY_MAX_PARITY}, N + m <= ${REDUNDANCY_MAX_PARTS} (e.g. 8+2)`);
  }
  return r;
}

/** Route policies over several relays, by their number in REMOTE CREATE's byte 86 (1-5; 0: one relay). */
export const ROUTE_POLICIES = ['one', 'round-robin', 'least-loaded', 'random', 'stripe', 'all'] as const;
export type RoutePolicyName = Exclude<typeof ROUTE_POLICIES[number], 'one'>;

export function remoteCreateParameters(s: RemoteCreateSpec): Buffer {
  const b = Buffer.alloc(96);
  const name = (v: string, at: number, max: number, what: string) => {
    const bytes = Buffer.from(v, 'latin1');
    if (bytes.length === 0 || bytes.length > max) throw new Error(`${what} ${JSON.stringify(v)}: 1 to ${max} bytes`);
    bytes.copy(b, at);
  };
  b.writeUInt16BE(s.volume, 0);
  const mode = s.mode === undefined ? 1 : REMOTE_MODES.indexOf(s.mode);
  if (mode < 1) throw new Error(`mode ${JSON.stringify(s.mode)}: expected ${REMOTE_MODES.slice(1).join(', ')}`);
  b[2] = mode;
  if (s.group !== undefined && (!Number.isInteger(s.group) || s.group < 0 || s.group > 255)) throw new Error(`group ${s.group}: 0 to 255`);
  b[88] = s.group ?? 0;
  b[3] = s.retries ?? 0;
  b.writeUInt32BE(Math.round(s.timeoutMs ?? 0), 4);
  name(s.to, 8, 31, 'peer array');
  if (s.via) name(s.via, 40, 31, 'relay');
  if (s.policy !== undefined) {
    const i = ROUTE_POLICIES.indexOf(s.policy);
    if (i < 1) throw new Error(`route policy ${JSON.stringify(s.policy)}: one of ${ROUTE_POLICIES.slice(1).join(', ')}`);
    if (!s.via) throw new Error('a route policy needs relays (--via r1,r2,...)');
    b[86] = i;
  }
  name(s.toVolume, 72, PEER_VOLUME_NAME_MAX, 'peer volume name');
  if (s.redundancy) { b[84] = s.redundancy.n; b[85] = s.redundancy.m; }
  return b;
}

export function remoteCreateCdb(length: number): Buffer { return management(true, RemoteAction.CREATE, length); }
export function remoteChangeCdb(volume: number, op: RemoteChangeName): Buffer { return management(true, RemoteAction.CHANGE, 0, volume, RemoteChange[op]); }

export interface RemoteStatus {
  pair: number;
  volume: number;
  role: 'primary' | 'secondary';
  state: RemoteStateName;
  reason: string;
  mode: RemoteModeName | 'none';
  viaRelay: boolean;
  peerNode: number;
  firstHopNode: number;
  /** Primary: the last issuing ID given out; secondary: the last one applied. */
  issuingId: number;
  inFlight: number;
  /** The command identifier of the write that suspended the pair (0: none). */
  failedCommand: number;
  copiedBytes: number;
  copyBytes: number;
  writes: number;
  bytes: number;
  peerVolume: string;
  /** Consistency group (0: none). */
  group: number;
  /** Primary: the difference bitmap's track size in bytes, and the tracks set (what a resume copies). */
  trackBytes: number;
  diffTracks: number;
  /** Primary, async: journal entries of this pair not yet acknowledged. */
  journalEntries: number;
  /** The array's journal: bytes held now, the most ever held, pairs suspended because it was full. */
  journalBytes: number;
  journalHighWater: number;
  journalFullSuspends: number;
  /** The array's WRITEs that arrived before their predecessor and were held back (a secondary's gaps). */
  heldEarly: number;
  /** Primary over several relays (embodiment 4): how they share the writes (absent: direct or one relay). */
  routePolicy?: string;
  /** Primary through relays: every relay of its route by node number, the first hop first ([] direct). */
  routeNodes: number[];
}

export function parseRemoteStatus(d: Buffer): RemoteStatus[] {
  return parseManagementList(d).entries.map((e) => ({
    pair: e[7],
    volume: e.readUInt16BE(0),
    role: e[2] === 2 ? 'secondary' : 'primary',
    state: REMOTE_STATES[e[3]] ?? 'simplex',
    reason: REMOTE_REASONS[e[4]] ?? String(e[4]),
    mode: REMOTE_MODES[e[5]] ?? 'none',
    viaRelay: e[6] === 1,
    peerNode: e.readUInt16BE(8),
    firstHopNode: e.readUInt16BE(10),
    issuingId: e.readUInt32BE(12),
    inFlight: e.readUInt32BE(16),
    failedCommand: e.readUInt32BE(20),
    copiedBytes: Number(e.readBigUInt64BE(24)),
    copyBytes: Number(e.readBigUInt64BE(32)),
    writes: Number(e.readBigUInt64BE(40)),
    bytes: Number(e.readBigUInt64BE(48)),
    peerVolume: e.subarray(56, 64).toString('latin1').replace(/\0.*$/, ''),
    group: e.length > 64 ? e[64] : 0,
    trackBytes: e.length > 64 && e[65] > 0 ? 2 ** e[65] : 0,
    journalEntries: e.length > 64 ? e.readUInt32BE(68) : 0,
    diffTracks: e.length > 64 ? e.readUInt32BE(72) : 0,
    journalBytes: e.length > 64 ? e.readUInt32BE(76) : 0,
    journalHighWater: e.length > 64 ? e.readUInt32BE(80) : 0,
    journalFullSuspends: e.length > 64 ? e.readUInt32BE(84) : 0,
    heldEarly: e.length > 64 ? e.readUInt32BE(88) : 0,
    routePolicy: e.length > 64 && e[66] > 1 ? ROUTE_POLICIES[e[67]] ?? String(e[67]) : undefined,
    routeNodes: e.length > 64 ? [...e.subarray(92, 92 + Math.min(e[66], 4))] : [],
  }));
}

export const RELAY_STATUS_ACTION = 0x19;

/** What a relay next to the array last reported (RELAY STATUS; the array's link binding keeps it). */
export interface RelayReport {
  relay: string;
  node: number;
  mode: 'storeAndForward' | 'cutThrough';
  state: 'running' | 'killed';
  active: number;
  bufferBytes: number;
  bufferUsedBytes: number;
  jobs: number;
  forwarded: number;
  bytes: number;
  failed: number;
  retries: number;
  duplicates: number;
  noBuffer: number;
  badPackets: number;
  /** Embodiment 4: the relay's buffer memory is non-volatile, and when it forwards what it stored. */
  nv: boolean;
  forward: 'now' | 'later' | 'threshold';
  /** Commands stored in its NV waiting to be forwarded. */
  held: number;
}

export function parseRelayStatus(d: Buffer): RelayReport[] {
  return parseManagementList(d).entries.map((e) => ({
    relay: e.subarray(64, 96).toString('latin1').replace(/\0.*$/s, ''),
    node: e.readUInt16LE(0),
    mode: (e[2] & 1) === 1 ? 'cutThrough' : 'storeAndForward',
    nv: (e[2] & 2) !== 0,
    forward: (['now', 'later', 'threshold'] as const)[(e[2] >> 2) & 3] ?? 'now',
    held: e.readUInt32LE(60),
    state: e[3] === 2 ? 'killed' : 'running',
    active: e.readUInt32LE(4),
    bufferBytes: e.readUInt32LE(8),
    bufferUsedBytes: e.readUInt32LE(12),
    jobs: Number(e.readBigUInt64LE(16)),
    forwarded: Number(e.readBigUInt64LE(24)),
    bytes: Number(e.readBigUInt64LE(32)),
    failed: e.readUInt32LE(40),
    retries: e.readUInt32LE(44),
    duplicates: e.readUInt32LE(48),
    noBuffer: e.readUInt32LE(52),
    badPackets: e.readUInt32LE(56),
  }));
}
