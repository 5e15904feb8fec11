// Document 003, embodiments 5 and 6 (Figs. 15-18) through the real firmware of both arrays on one
// virtual clock: a remote pair created with redundancy 8+2 over two links between A and B (Fig. 17's
// separate networks). The array's link unit (comm/link.ts) hands every block to its redundancy
// unit (remote/redundancy.ts via remote/rdlink.ts): sender S301 WRITE -> S303 READY -> S304 encode
// -> S305 one packet per part across both links -> S306 RECEIVED; receiver S320 slot -> S321 READY
// -> S322/S323 parts -> S324 fewer than N? wait -> S325 rebuild -> S327 stored through B's write path
// (cache and NV) -> S326 RECEIVED. Embodiment 5 is the backup's copy loop (S300, S307-S309: the
// initial copy); embodiment 6 the host write's GOOD after the local write and RECEIVED (S340-S351).
// Losses are made on the wire (a filter on each link's model) so that each test loses exactly what
// it names: the link model's random loss cannot promise "at most 2 parts of every block".
import test from 'ava';
import * as A from '../../hal/abi';
import { startSites, untilRemote, type Sites } from '../remote/sites';
import { pattern } from '../harness/env';
import { crc32c } from '../../lib/protocol';
import { rdArrayStats } from '../remote/rdstats';

const BLOCKS = 2048; // 1 MiB volumes of 512-byte blocks: 16 blocks of 64 KiB (N = 8 parts of 8 KiB)
const KM = 100; // 500 µs one way

interface Part { type: number; redundant: boolean; src: number; cmd: number; part: number }
function parse(b: Uint8Array): Part {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return {
    type: b[A.LPK_TYPE], redundant: (b[A.LPK_FLAGS] & A.LF_REDUNDANT) !== 0, src: v.getUint16(A.LPK_SRC_NODE, true),
    cmd: v.getUint32(A.LPK_CMD_ID, true), part: v.getUint32(A.LPK_OFFSET, true) & 0xFF,
  };
}

/**
 * Puts `f` on every link's wire: it sees each packet as it leaves and returns it (changed or not), or
 * null to lose it. Counts as the model's loss.
 */
function onWire(s: Sites, f: (p: Part, bytes: Uint8Array) => Uint8Array | null): void {
  for (const l of s.emu.network.links) {
    const send = l.send.bind(l);
    l.send = (side: 0 | 1, bytes: Uint8Array, now: number) => {
      const out = f(parse(bytes), bytes);
      if (out) send(side, out, now); else l.counters.lost++;
    };
  }
}

/** First-time parts of each command: `lose(cmd)` names the part indexes to lose; a part sent again passes. */
function loseParts(s: Sites, lose: (cmd: number) => number[]): { lost: number } {
  const seen = new Set<string>();
  const r = { lost: 0 };
  onWire(s, (p, bytes) => {
    if (!p.redundant || p.type !== A.LT_DATA || p.src !== 0) return bytes;
    const key = `${p.cmd}/${p.part}`;
    if (seen.has(key)) return bytes;
    seen.add(key);
    if (!lose(p.cmd).includes(p.part)) return bytes;
    r.lost++;
    return null;
  });
  return r;
}

async function sites(label: string, mode: 'backup' | 'mirror', o: { timeoutMs?: number; retries?: number } = {}): Promise<Sites> {
  const s = await startSites(label, { directKm: KM, links: 2, blocks: BLOCKS });
  await s.a.write(1, 0, pattern(BLOCKS * 512, 11));
  await s.a.remoteCreate({ volume: s.va, to: 'B', toVolume: 'mirror', mode, redundancy: { n: 8, m: 2 }, timeoutMs: o.timeoutMs ?? 20, retries: o.retries ?? 4 });
  return s;
}

async function identical(s: Sites): Promise<boolean> {
  return (await s.a.read(1, 0, BLOCKS)).equals(await s.b.read(1, 0, BLOCKS));
}

test('embodiment 5 (Figs. 15-17): backup 8+2 over two links, the copy loop S300-S309 with 2 parts of every block lost: rebuilt at S325 without retransmission, B byte-identical', async (t) => {
  const s = await sites('003-rd-two-lost', 'backup');
  try {
    // Two parts of each block, data parts among them (so S325 must compute them), chosen per command.
    const wire = loseParts(s, (cmd) => [cmd % 8, 8 + (cmd % 2)]);
    const p = await untilRemote(s, (x) => x.state === 'pair', 'pair (S309: every block copied)');
    t.is(p.copiedBytes, BLOCKS * 512);
    await untilRemote(s, (x) => x.inFlight === 0, 'quiet');
    const a = rdArrayStats(s, 'A');
    const b = rdArrayStats(s, 'B');
    t.is(a.writes, 16, 'one redundancy-processed WRITE per 64 KiB block (S301)');
    t.is(a.done, 16, 'each ended with RECEIVED GOOD (S306)');
    t.is(wire.lost, 32, 'two parts of each block were lost on the wire');
    t.is(b.rebuilt, 16, 'every block needed S325 (a data part was missing)');
    t.is(b.resendRequests, 0, 'no READY naming missing parts: nothing asked again');
    t.is(a.partsResent, 0, 'no part sent twice');
    t.true(await identical(s), 'B is byte-identical to A');
    // The parts crossed both networks (Fig. 17): each link carried data.
    for (const l of s.emu.network.links) t.true(l.counters.delivered > 16, `${l.name} carried parts (${l.counters.delivered} packets)`);
  } finally {
    await s.emu.stop();
  }
});

test('embodiment 5: more than m parts of a block lost: S324 waits, the receiver asks for what it lacks, B is still byte-identical', async (t) => {
  const s = await sites('003-rd-three-lost', 'backup');
  try {
    const wire = loseParts(s, (cmd) => (cmd % 4 === 0 ? [0, 3, 9] : [])); // three of ten: one more than m
    await untilRemote(s, (x) => x.state === 'pair', 'pair');
    await untilRemote(s, (x) => x.inFlight === 0, 'quiet');
    const a = rdArrayStats(s, 'A');
    const b = rdArrayStats(s, 'B');
    t.true(wire.lost >= 12, `${wire.lost} parts lost`);
    t.true(b.resendRequests >= 4, `B asked again (${b.resendRequests} requests)`);
    t.true(a.partsResent >= 4 && a.partsResent <= 2 * b.resendRequests, `A sent only parts asked for (${a.partsResent})`);
    t.is(a.failed, 0);
    t.true(await identical(s), 'B is byte-identical to A');
  } finally {
    await s.emu.stop();
  }
});

test('embodiment 6 (Fig. 18, S340-S351): a mirror host write is GOOD after the local write and RECEIVED, with B holding the block; 2 parts lost change nothing', async (t) => {
  const s = await sites('003-rd-mirror', 'mirror');
  try {
    await untilRemote(s, (x) => x.state === 'pair', 'pair');
    await untilRemote(s, (x) => x.inFlight === 0, 'quiet');
    loseParts(s, (cmd) => [1, 6]);
    const data = pattern(128 * 1024, 23);
    const t0 = s.emu.driver('A').now();
    await s.a.write(1, 512, data); // S340-S351: two blocks of 64 KiB
    const took = s.emu.driver('A').now() - t0;
    t.true(took >= 2 * 2 * KM * 5e3, `GOOD after RECEIVED: at least two round trips per block (${took / 1e6} ms)`);
    t.true((await s.b.read(1, 512, 256)).equals(data), 'B holds the blocks when A answers GOOD (S327 before S326)');
    t.is(rdArrayStats(s, 'B').resendRequests, 0);
    t.true(await identical(s));
  } finally {
    await s.emu.stop();
  }
});

test('embodiment 6: a block B cannot keep is never GOOD at A: B failed over refuses it (DATA PROTECT in RECEIVED), A\'s write ends CHECK CONDITION and the pair is suspended (remote)', async (t) => {
  const s = await sites('003-rd-refused', 'mirror');
  try {
    await untilRemote(s, (x) => x.state === 'pair', 'pair');
    await untilRemote(s, (x) => x.inFlight === 0, 'quiet');
    await s.b.remoteChange(s.vb, 'failover');
    const before = await s.b.read(1, 64, 16);
    await t.throwsAsync(s.a.write(1, 64, pattern(8192, 31)), { message: /ABORTED COMMAND/ });
    const p = await s.a.remoteOf(s.va);
    t.is(p.state, 'suspended');
    t.is(p.reason, 'remote');
    t.true((await s.b.read(1, 64, 16)).equals(before), 'B kept its own bytes');
  } finally {
    await s.emu.stop();
  }
});

test('all links cut: a mirror write ends ABORTED COMMAND, 0Bh/08h/01h, within the pair\'s bound and the pair is suspended (link); after the heal, resume copies again and B matches', async (t) => {
  const s = await sites('003-rd-cut', 'mirror', { timeoutMs: 10, retries: 3 });
  try {
    await untilRemote(s, (x) => x.state === 'pair', 'pair');
    await untilRemote(s, (x) => x.inFlight === 0, 'quiet');
    s.emu.injectNetwork('link direct down');
    s.emu.injectNetwork('link direct2 down');
    const t0 = s.emu.driver('A').now();
    const e = await t.throwsAsync(s.a.write(1, 10, pattern(8192, 4)));
    const waited = s.emu.driver('A').now() - t0;
    t.regex(e!.message, /ABORTED COMMAND/);
    t.regex(e!.message, /COMMUNICATION TIMEOUT|08h\/01h/i);
    // The unit's bound: the WRITE repeated every timeout, `retries` times (10 ms x 4), plus a margin.
    t.true(waited <= 10e6 * 4 * 2, `bounded: ${waited / 1e6} ms`);
    const p = await s.a.remoteOf(s.va);
    t.is(p.state, 'suspended');
    t.is(p.reason, 'link');
    t.true(rdArrayStats(s, 'A').failed >= 1, 'the unit gave the command up (RD_STATUS_TIMEOUT)');
    await s.a.write(1, 10, pattern(8192, 5)); // local now
    s.emu.injectNetwork('link direct up');
    s.emu.injectNetwork('link direct2 up');
    await s.a.remoteChange(s.va, 'resume');
    await untilRemote(s, (x) => x.state === 'pair', 'pair again');
    await untilRemote(s, (x) => x.inFlight === 0, 'quiet');
    t.true(await identical(s), 'the resume resynchronised B');
  } finally {
    await s.emu.stop();
  }
});

test('bad parts are dropped and counted: a garbled part (its CRC fails) and a part naming an index past N + m (sealed again) are not used; the block is rebuilt from the rest without retransmission', async (t) => {
  const s = await sites('003-rd-bad', 'backup');
  try {
    const seen = new Set<string>();
    let garbled = 0;
    let misnamed = 0;
    onWire(s, (p, bytes) => {
      if (!p.redundant || p.type !== A.LT_DATA || p.src !== 0 || seen.has(`${p.cmd}/${p.part}`)) return bytes;
      seen.add(`${p.cmd}/${p.part}`);
      const b = bytes.slice();
      if (p.part === 2) { b[A.LINK_HEADER_BYTES + 5] ^= 0x40; garbled++; return b; } // the CRC no longer holds
      if (p.part === 9) { // index 30 of a 10-part command, CRC sealed again: a well-formed packet with a bad part index
        b[A.LPK_OFFSET] = 30;
        new DataView(b.buffer).setUint32(A.LPK_CRC, 0, true);
        new DataView(b.buffer).setUint32(A.LPK_CRC, crc32c(b), true);
        misnamed++;
        return b;
      }
      return bytes;
    });
    await untilRemote(s, (x) => x.state === 'pair', 'pair');
    await untilRemote(s, (x) => x.inFlight === 0, 'quiet');
    const b = rdArrayStats(s, 'B');
    t.is(garbled, 16);
    t.is(misnamed, 16);
    t.is(b.bad, 16, 'each misnamed part dropped and counted by the unit');
    t.is(b.rebuilt, 16, 'each garbled part (a data part) was dropped at its CRC: S325 computed it from the parity');
    t.is(b.resendRequests, 0);
    t.true(await identical(s));
  } finally {
    await s.emu.stop();
  }
});

test('REMOTE CREATE with redundancy: N+m out of range, or through a relay, is refused (86h/18h) naming byte 84; nothing is created', async (t) => {
  const direct = await startSites('003-rd-bad-create', { directKm: KM, links: 2, blocks: 256 });
  const relayed = await startSites('003-rd-bad-create-relay', { relay: { nearKm: 10, farKm: 100 }, blocks: 256 });
  try {
    for (const redundancy of [{ n: 0, m: 2 }, { n: 8, m: 9 }, { n: 30, m: 3 }]) {
      const e = await t.throwsAsync(direct.a.remoteCreate({ volume: direct.va, to: 'B', toVolume: 'mirror', redundancy }), { message: /REDUNDANCY NOT POSSIBLE/ }, JSON.stringify(redundancy));
      t.is((e as unknown as { sense: { field: { byte: number } } }).sense.field.byte, 84);
    }
    t.deepEqual(await direct.a.remoteStatus(), []);
    const e = await t.throwsAsync(relayed.a.remoteCreate({ volume: relayed.va, to: 'B', toVolume: 'mirror', via: 'relay0', redundancy: { n: 8, m: 2 } }), { message: /REDUNDANCY NOT POSSIBLE/ }, 'parts go over direct links only');
    t.is((e as unknown as { sense: { field: { byte: number } } }).sense.field.byte, 84);
    t.deepEqual(await relayed.a.remoteStatus(), []);
  } finally {
    await direct.emu.stop();
    await relayed.emu.stop();
  }
});
