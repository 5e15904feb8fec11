// Follows one remote write through a run's trace (docs/remote.md, "Trace"): from the origin array's
// send, across every relay, to what the standby did with it. The trace holds the records of every
// array and relay of a world on one clock (harness/array.ts, harness/relay.ts); each hop names the
// write by (its sender node, the sender's command identifier) and the issuing ID, which the whole
// route keeps (a relay gives the command a command identifier of its own downstream and says so in
// its record). Command identifiers are reused over a run; the issuing ID is not (per pair), so the
// pair is told by the origin's records and matched onward by the identifiers each hop names.
import * as fs from 'fs';

export type Rec = Record<string, string | number | boolean>;

export interface FollowQuery {
  /** The origin array (default: the first with a matching remoteSend). */
  array?: string;
  /** The origin's command identifier of the send (the first such send when it was reused). */
  cmdId?: number;
  /** The write's issuing ID at the origin. */
  issuingId?: number;
  /** The origin's pair. */
  pair?: number;
}

export interface FollowResult {
  origin: { array: string; node: number; pair: number; issuingId: number };
  /** Every record of the write, in time order (trace order within one instant). */
  steps: Rec[];
}

/** The JSON-lines trace file read back: the records with a type (metrics included). */
export function readTrace(file: string): Rec[] {
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l, i) => {
    try { return JSON.parse(l) as Rec; } catch { throw new Error(`${file}:${i + 1}: not a JSON record`); }
  });
}

const key = (node: unknown, cmdId: unknown) => `${node}/${cmdId}`;

/** The write's path; throws naming the query when no send matches. */
export function followWrite(records: Rec[], q: FollowQuery): FollowResult {
  if (q.cmdId === undefined && q.issuingId === undefined) throw new Error('follow needs a command identifier or an issuing ID');
  const send = records.find((r) => r.type === 'remoteSend' && (q.array === undefined || r.array === q.array)
    && (q.cmdId === undefined || r.cmdId === q.cmdId) && (q.issuingId === undefined || r.issuingId === q.issuingId)
    && (q.pair === undefined || r.pair === q.pair));
  if (!send) {
    const what = [q.array && `array ${q.array}`, q.pair !== undefined && `pair ${q.pair}`, q.cmdId !== undefined && `command identifier ${q.cmdId}`,
      q.issuingId !== undefined && `issuing ID ${q.issuingId}`].filter(Boolean).join(', ');
    throw new Error(`no remoteSend record with ${what} in the trace (is the trace on, and is the write a remote pair's?)`);
  }
  const array = String(send.array);
  const pair = Number(send.pair);
  const issuingId = Number(send.issuingId);
  const node = Number(send.node);
  const same = (r: Rec) => r.issuingId === issuingId;
  // At the origin: every copy of the write (policy all sends one per relay under one issuing ID) and its answers.
  const steps = new Set<Rec>(records.filter((r) => r.array === array && same(r) && r.pair === pair
    && (r.type === 'remoteSend' || r.type === 'remoteAck' || r.type === 'remoteParts')));
  // A redundancy-processed send's parts carry the redundancy unit's command identifier (remoteParts).
  const hops = new Set<string>([...steps].filter((r) => r.type === 'remoteSend' || r.type === 'remoteParts')
    .map((r) => key(node, r.type === 'remoteParts' ? r.partsCmdId : r.cmdId)));
  // Relays: a record whose upstream (node, cmdId) is a known hop adds the relay's own identifier; the
  // steps that face the next hop (forward, done, failed) are known by that own identifier.
  const upstream = new Set(['stored', 'held', 'duplicate', 'recovered']);
  for (let grew = true; grew;) {
    grew = false;
    for (const r of records) {
      if (r.type !== 'remoteRelay' || !same(r) || r.origin !== node || steps.has(r)) continue;
      const own = key(r.node, r.cmdId);
      if (!hops.has(own) && !(upstream.has(String(r.step)) && hops.has(key(r.hop, r.upCmdId)))) continue;
      steps.add(r);
      if (!hops.has(own)) { hops.add(own); grew = true; }
    }
  }
  // Receivers: records naming a known hop as sender; then the receiver's pair's records of the issuing ID.
  const pairs = new Set<string>();
  for (const r of records) {
    if (r.array === undefined || r.array === array || !same(r) || !hops.has(key(r.from, r.cmdId))) continue;
    if (!['remoteApply', 'remoteDelay', 'remoteRebuilt', 'remoteDropped'].includes(String(r.type))) continue;
    steps.add(r);
    if (r.pair !== undefined) pairs.add(`${r.array}/${r.pair}`);
  }
  for (const r of records) {
    if (r.array === undefined || !same(r) || !pairs.has(`${r.array}/${r.pair}`)) continue;
    if (['remoteDelay', 'remoteReflect', 'remoteDiscarded'].includes(String(r.type))) steps.add(r);
  }
  const order = new Map(records.map((r, i) => [r, i]));
  const sorted = [...steps].sort((a, b) => Number(a.t) - Number(b.t) || order.get(a)! - order.get(b)!);
  return { origin: { array, node, pair, issuingId }, steps: sorted };
}

/** One line per step: time in ms, where, what. */
export function describeStep(r: Rec): string {
  const at = r.relay !== undefined ? `relay ${r.relay}` : `array ${r.array}`;
  const ms = (Number(r.t) / 1e6).toFixed(3).padStart(10);
  const id = (c: unknown) => `cmd ${c}`;
  switch (r.type) {
    case 'remoteSend': return `${ms}  ${at}  send ${r.bytes} bytes (pair ${r.pair}, ${id(r.cmdId)}, issuing ID ${r.issuingId})`;
    case 'remoteParts': return `${ms}  ${at}  sent as parts (${id(r.partsCmdId)} on the wire)`;
    case 'remoteAck': return `${ms}  ${at}  ${r.answer} (${id(r.cmdId)}, status ${r.status})`;
    case 'remoteRelay': return `${ms}  ${at}  ${r.step} (${id(r.upCmdId)} from upstream, its own ${id(r.cmdId)}, ${r.step === 'forward' || r.step === 'done' || r.step === 'failed' ? 'next hop' : 'from'} node ${r.hop}${r.step === 'done' ? `, status ${r.status}` : ''})`;
    case 'remoteApply': return `${ms}  ${at}  applied (pair ${r.pair}, from node ${r.from}, ${id(r.cmdId)}, status ${r.status})`;
    case 'remoteDelay': return r.held ? `${ms}  ${at}  held for its restart point (pair ${r.pair}, from node ${r.from}, ${id(r.cmdId)})`
      : `${ms}  ${at}  delay write refused (pair ${r.pair}, sync ID ${r.syncId}, refusal ${r.refusal})`;
    case 'remoteReflect': return `${ms}  ${at}  reflected: blocks ${r.lba}+${r.blocks} written (pair ${r.pair})`;
    case 'remoteDiscarded': return `${ms}  ${at}  discarded at failover (pair ${r.pair}, sync ID ${r.syncId}, ${r.bytes} bytes)`;
    case 'remoteRebuilt': return `${ms}  ${at}  rebuilt from parts ${r.arrived} of ${Number(r.n) + Number(r.m)}${r.rebuilt ? `, data parts ${r.rebuilt} computed` : ''} (from node ${r.from}, ${id(r.cmdId)})`;
    case 'remoteDropped': return `${ms}  ${at}  dropped: ${r.reason}${r.reason === 'surplus part' || r.reason === 'part again' ? ` ${r.part}` : ''} (from node ${r.from}, ${id(r.cmdId)})`;
    default: return `${ms}  ${at}  ${r.type}`;
  }
}
