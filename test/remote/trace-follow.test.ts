// The trace follows one remote write from host to standby (issue 10: "the trace records every
// forwarded, rebuilt, dropped, delayed, reflected and discarded write with its identifiers"):
// scenarios through both arrays' firmware and the relays' (deterministic, one virtual clock), each
// write followed with `sanbox trace --follow` (harness/follow.ts) and its steps asserted in order.
import test from 'ava';
import * as path from 'path';
import * as A from '../../hal/abi';
import { startSites, startWith, untilRemote, type Sites } from './sites';
import { relaysTopology } from './relays';
import { pattern } from '../harness/env';
import { readTrace, followWrite, type Rec } from '../../harness/follow';
import { main as sanbox } from '../../harness/cli';

const BS = 512;

/** The trace once every node has stopped (the file is complete then). */
async function stopAndRead(s: Sites): Promise<Rec[]> {
  await s.emu.stop();
  return readTrace(path.join(s.dir, 'trace.jsonl'));
}

/** What each step of a followed write was: where, and the record's kind (with its relay step or drop reason). */
function path_(steps: Rec[]): string[] {
  return steps.map((r) => `${r.relay ?? r.array}:${r.type}${r.step ? `/${r.step}` : ''}${r.answer ? `/${r.answer}` : ''}${r.reason ? `/${r.reason}` : ''}`);
}

/** The send of `bytes` at A after the pair reached `pair` (host writes: the copy's sends are larger). */
function sendOf(records: Rec[], bytes: number, nth = 0): Rec {
  const sends = records.filter((r) => r.array === 'A' && r.type === 'remoteSend' && r.bytes === bytes);
  if (!sends[nth]) throw new Error(`no send of ${bytes} bytes at A (sends: ${records.filter((r) => r.type === 'remoteSend').map((r) => r.bytes).join(', ')})`);
  return sends[nth];
}

/** `sanbox trace <file> --follow <cmdId> --array A --issuing <id>`: its output lines. */
async function cli(file: string, args: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => { lines.push(a.join(' ')); };
  try {
    const code = await sanbox(['trace', file, ...args]);
    return { code, out: lines.join('\n') };
  } finally {
    console.log = log;
  }
}

test('embodiment 7 through a relay, followed: a write held at the standby then reflected at the restart point (S425, S464); a later one discarded at failover (S482)', async (t) => {
  const s = await startSites('trace-delayed', { relay: { nearKm: 10, farKm: 1000 }, blocks: 2048, trace: true });
  let records: Rec[];
  try {
    await s.a.remoteCreate({ volume: s.va, to: 'B', toVolume: 'mirror', via: 'relay0', mode: 'delayed' });
    await untilRemote(s, (x) => x.state === 'pair', 'pair');
    await s.a.write(1, 32, pattern(32 * BS, 1)); // 16 KiB at byte 16 KiB: one delay write of 16 KiB
    await s.a.remoteChange(s.va, 'restart-point');
    await s.a.write(1, 64, pattern(48 * BS, 2)); // 24 KiB: held at B, never reflected
    await s.emu.advance(50);
    s.emu.array('A').powerFail('site A lost (test)');
    await s.b.remoteChange(s.vb, 'failover');
  } finally {
    records = await stopAndRead(s);
  }
  const w1 = sendOf(records, 16 * 1024);
  const f1 = followWrite(records, { array: 'A', cmdId: Number(w1.cmdId), issuingId: Number(w1.issuingId) });
  t.deepEqual(path_(f1.steps), [
    'A:remoteSend',
    'relay0:remoteRelay/forward', // S122: the WRITE downstream at once, under the relay's own command identifier
    'relay0:remoteRelay/stored', // S123-S126: all data in the relay's buffer memory
    'A:remoteAck/received', // the host hears GOOD at the relay's RECEIVED (embodiment 1)
    'B:remoteDelay', // S425: held in the buffer for synchronization
    // S464: written to B's volume by the delay data reflecting command, which A sent after its host's
    // GOOD; it reaches B before B's RECEIVED for the write is back at the relay (1,000 km each way).
    'B:remoteReflect',
    'relay0:remoteRelay/done', // S129: B's RECEIVED
    'A:remoteAck/forwarded',
  ]);
  const [send, forward, stored, , held, reflect, done] = f1.steps;
  t.like(stored, { origin: f1.origin.node, upCmdId: send.cmdId, issuingId: send.issuingId, hop: f1.origin.node });
  t.like(held, { from: forward.node, cmdId: forward.cmdId, issuingId: send.issuingId, held: true }, 'B names the relay and the relay\'s own identifier');
  t.like(done, { cmdId: forward.cmdId, status: 0 });
  t.like(reflect, { pair: held.pair, lba: 32, blocks: 32, issuingId: send.issuingId });

  const w2 = sendOf(records, 24 * 1024);
  const f2 = followWrite(records, { array: 'A', issuingId: Number(w2.issuingId) });
  const p2 = path_(f2.steps);
  t.is(p2[0], 'A:remoteSend');
  t.true(p2.includes('B:remoteDelay'), p2.join(' '));
  t.is(p2[p2.length - 1], 'B:remoteDiscarded', 'S482: discarded at failover, never reflected');
  t.false(p2.includes('B:remoteReflect'));
  t.like(f2.steps[f2.steps.length - 1], { issuingId: w2.issuingId, bytes: 24 * 1024, pair: held.pair });

  // The command line prints the same path.
  const out = await cli(path.join(s.dir, 'trace.jsonl'), ['--follow', String(w1.cmdId), '--array', 'A', '--issuing', String(w1.issuingId)]);
  t.is(out.code, 0);
  t.regex(out.out, /write of array A \(node 0\), pair \d+, issuing ID \d+:/);
  t.regex(out.out, /relay relay0 {2}forward/);
  t.regex(out.out, /array B {2}held for its restart point/);
  t.regex(out.out, /array B {2}reflected: blocks 32\+32 written/);
});

test('embodiment 5, followed: a redundancy-processed write with a data part lost is rebuilt at S325 from the parity, the surplus part and the WRITE\'s copy dropped', async (t) => {
  const s = await startSites('trace-rd', { directKm: 100, links: 2, blocks: 1024, trace: true });
  let records: Rec[];
  try {
    await s.a.remoteCreate({ volume: s.va, to: 'B', toVolume: 'mirror', mode: 'mirror', redundancy: { n: 8, m: 2 }, timeoutMs: 20, retries: 4 });
    await untilRemote(s, (x) => x.state === 'pair', 'pair');
    // From now on the first redundancy-processed command's data part 2 is lost on the wire.
    let victim = -1;
    for (const l of s.emu.network.links) {
      const send = l.send.bind(l);
      l.send = (side: 0 | 1, bytes: Uint8Array, now: number) => {
        const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        const data = bytes[A.LPK_TYPE] === A.LT_DATA && (bytes[A.LPK_FLAGS] & A.LF_REDUNDANT) !== 0 && v.getUint16(A.LPK_SRC_NODE, true) === 0;
        if (data && victim < 0) victim = v.getUint32(A.LPK_CMD_ID, true);
        if (data && v.getUint32(A.LPK_CMD_ID, true) === victim && (v.getUint32(A.LPK_OFFSET, true) & 0xFF) === 2) { l.counters.lost++; return; }
        send(side, bytes, now);
      };
    }
    await s.a.write(1, 0, pattern(128 * BS, 5)); // one 64 KiB block: 8 data parts of 8 KiB, 2 parity
    await s.emu.advance(20);
    t.true((await s.a.read(1, 0, 128)).equals(await s.b.read(1, 0, 128)));
  } finally {
    records = await stopAndRead(s);
  }
  const w = records.filter((r) => r.array === 'A' && r.type === 'remoteSend' && r.bytes === 64 * 1024).pop()!;
  const f = followWrite(records, { array: 'A', cmdId: Number(w.cmdId), issuingId: Number(w.issuingId) });
  const p = path_(f.steps);
  t.deepEqual(p.slice(0, 2).sort(), ['A:remoteParts', 'A:remoteSend'], 'at one instant: the send and its identifier on the wire');
  const rebuilt = f.steps.find((r) => r.type === 'remoteRebuilt')!;
  t.like(rebuilt, { array: 'B', n: 8, m: 2, rebuilt: '2', issuingId: w.issuingId }, 'S325: data part 2 computed from the parity');
  t.false(String(rebuilt.arrived).split(',').includes('2'));
  t.true(p.includes('B:remoteDropped/write again'), 'the WRITE\'s copy on the other network dropped');
  t.true(p.includes('B:remoteDropped/surplus part'), 'the part after the N-th dropped ([0136])');
  const order = ['A:remoteSend', 'B:remoteRebuilt', 'B:remoteApply', 'A:remoteAck/received'];
  t.deepEqual(p.filter((x) => order.includes(x)), order, p.join(' '));
  t.is(f.steps.find((r) => r.type === 'remoteApply')!.status, 0);
});

test('[0109]-[0113], followed: the same write to three relays (policy all), applied once at B, the other copies dropped by issuing ID', async (t) => {
  const s = await startWith('trace-all', (dir) => ({ ...relaysTopology(dir, { relays: 3 }), trace: path.join(dir, 'trace.jsonl'), metricsIntervalMs: 1000 }), 2048);
  let records: Rec[];
  try {
    await s.a.remoteCreate({ volume: s.va, to: 'B', toVolume: 'mirror', via: 'r1,r2,r3', policy: 'all' });
    await untilRemote(s, (x) => x.state === 'pair', 'pair');
    await s.a.write(1, 16, pattern(16 * BS, 7)); // 8 KiB
    await untilRemote(s, (x) => x.inFlight === 0, 'every copy answered');
  } finally {
    records = await stopAndRead(s);
  }
  const w = sendOf(records, 8 * 1024);
  const f = followWrite(records, { array: 'A', cmdId: Number(w.cmdId), issuingId: Number(w.issuingId) });
  const sends = f.steps.filter((r) => r.type === 'remoteSend');
  t.is(sends.length, 3, 'one copy per relay under one issuing ID, each its own command identifier');
  t.is(new Set(sends.map((r) => r.cmdId)).size, 3);
  for (const r of ['r1', 'r2', 'r3']) {
    // (a relay may also see A's WRITE again — `duplicate` — when its READY was slow: answered, not started twice)
    t.deepEqual(f.steps.filter((x) => x.relay === r && x.step !== 'duplicate').map((x) => x.step), ['forward', 'stored', 'done'], r);
  }
  const applied = f.steps.filter((r) => r.type === 'remoteApply');
  const dropped = f.steps.filter((r) => r.type === 'remoteDropped');
  t.is(applied.length, 1, 'B applied the issuing ID once');
  for (const d of dropped) t.true(d.reason === 'copy applied already' || d.reason === 'copy being applied', String(d.reason));
  // Each other copy is dropped (a copy met while another is being applied is left unanswered and its
  // relay repeats it: dropped again, then answered once the ID is applied).
  const relayOf = (r: Rec) => f.steps.find((x) => x.type === 'remoteRelay' && x.node === r.from && x.cmdId === r.cmdId)!.relay;
  const winner = relayOf(applied[0]);
  t.deepEqual(new Set(dropped.map(relayOf)), new Set(['r1', 'r2', 'r3'].filter((r) => r !== winner)), 'the copies of the two other relays dropped');
  for (const r of ['r1', 'r2', 'r3'].filter((x) => x !== winner)) {
    t.is(dropped.filter((d) => relayOf(d) === r).pop()!.reason, 'copy applied already', `${r}'s copy answered again at last`);
  }
});

test('sanbox trace: bad input is refused with the reason, exit 2 (usage) or 1 (no such write)', async (t) => {
  t.is((await cli('/nonexistent', [])).code, 2, 'no --follow or --issuing');
  t.is((await cli('/nonexistent', ['--follow', 'x'])).code, 2);
  t.is((await cli('/nonexistent', ['--follow', '1', '--bogus'])).code, 2);
  const err: string[] = [];
  const e = console.error;
  console.error = (...a: unknown[]) => { err.push(a.join(' ')); };
  try {
    t.is((await sanbox(['trace', '/nonexistent/trace.jsonl', '--follow', '1'])), 1);
  } finally {
    console.error = e;
  }
  t.regex(err.join('\n'), /ENOENT|no such file/);
  t.throws(() => followWrite([{ type: 'remoteSend', array: 'A', pair: 0, cmdId: 1, issuingId: 2, bytes: 8192, node: 0, t: 0 }], { array: 'A', cmdId: 9 }),
    { message: /no remoteSend record with array A, command identifier 9/ });
});
