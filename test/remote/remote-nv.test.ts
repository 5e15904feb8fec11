// Remote pair records in NV memory (firmware/remote/pair.ts, nv.ts NVT_REMOTE; docs/remote.md,
// "Remote pairs and their state"): what a kill -9 of either array brings back, through the real
// firmware of both arrays on one virtual clock. Document 003, embodiment 3 (Fig. 7: S160-S170) for
// the writes; the initial copy (Fig. 4: S100-S108) for resume.
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import { startSites, restartSites, untilRemote, type Sites } from './sites';
import { pattern } from '../harness/env';
import { toVersion } from '../harness/nvimage';

const DIRECT = { directKm: 100, fileMedia: true }; // file media: the volumes' data outlives a restart

async function paired(label: string): Promise<Sites> {
  const s = await startSites(label, DIRECT);
  await s.a.write(1, 0, pattern(64 * 1024, 1));
  await s.a.remoteCreate({ volume: s.va, to: 'B', toVolume: 'mirror' });
  await untilRemote(s, (x) => x.state === 'pair', 'pair (S100-S108)');
  return s;
}

test('a kill -9 of both arrays: A comes back suspended (restart) with issuing IDs past every one it gave out, B read-only and refusing the link until resume; resume copies again and B equals A', async (t) => {
  let s = await paired('remote-nv-both');
  try {
    await s.a.write(1, 256, pattern(96 * 1024, 2)); // S160-S170: GOOD once B has it (direct)
    await untilRemote(s, (x) => x.inFlight === 0, 'nothing in flight');
    const before = await s.a.remoteOf(s.va);
    s = await restartSites(s, DIRECT);
    const a = await s.a.remoteOf(s.va);
    t.like(a, { role: 'primary', state: 'suspended', reason: 'restart', peerVolume: 'mirror', mode: before.mode });
    t.true(a.issuingId > before.issuingId, `issuing IDs go on past the lease (${before.issuingId} -> ${a.issuingId})`);
    const b = await s.b.remoteOf(s.vb);
    t.like(b, { role: 'secondary', state: 'suspended', reason: 'restart' });
    await t.throwsAsync(s.b.write(1, 0, pattern(512, 3)), { message: /DATA PROTECT|WRITE PROTECTED/i }, 'the secondary stays read-only to hosts');
    const local = pattern(32 * 1024, 4);
    await s.a.write(1, 1024, local); // suspended: GOOD on A's cache and NV only
    t.false((await s.b.read(1, 1024, 64)).equals(local), 'nothing was sent while suspended');
    await s.a.remoteChange(s.va, 'resume'); // CREATE again (B's base: A's issuing ID), then the whole copy
    await untilRemote(s, (x) => x.state === 'pair', 'pair after resume');
    await s.a.write(1, 2048, pattern(48 * 1024, 5));
    await untilRemote(s, (x) => x.inFlight === 0, 'nothing in flight');
    t.is((await s.b.remoteOf(s.vb)).state, 'pair');
    await s.b.remoteChange(s.vb, 'failover');
    t.true((await s.a.read(1, 0, 4096)).equals(await s.b.read(1, 0, 4096)), 'B is byte-identical to A');
  } finally {
    await s.emu.stop('powerFail');
  }
});

test('B killed alone: A suspends (link) and keeps the reason over its own kill -9; a failover of B is persisted before GOOD and survives a kill -9: B stays the hosts\' with what it had', async (t) => {
  let s = await paired('remote-nv-secondary');
  try {
    const applied = pattern(64 * 1024, 6);
    await s.a.write(1, 512, applied);
    await untilRemote(s, (x) => x.inFlight === 0, 'nothing in flight');
    s.emu.array('B').powerFail('site B lost');
    await t.throwsAsync(s.a.write(1, 768, pattern(8 * 1024, 7)), { message: /COMMUNICATION TIMEOUT|ABORTED COMMAND/i });
    t.like(await s.a.remoteOf(s.va), { state: 'suspended', reason: 'link' });
    s = await restartSites(s, DIRECT);
    t.like(await s.a.remoteOf(s.va), { role: 'primary', state: 'suspended', reason: 'link' }, 'the reason it had');
    t.like(await s.b.remoteOf(s.vb), { role: 'secondary', state: 'suspended', reason: 'restart' });
    await s.b.remoteChange(s.vb, 'failover');
    s = await restartSites(s, DIRECT);
    t.like(await s.b.remoteOf(s.vb), { role: 'secondary', state: 'failover' }, 'the failover survived');
    t.true((await s.b.read(1, 512, 128)).equals(applied), 'B holds what it applied before it was lost');
    const mine = pattern(4096, 8);
    await s.b.write(1, 0, mine); // the hosts' volume now
    t.true((await s.b.read(1, 0, 8)).equals(mine));
    await t.throwsAsync(s.a.remoteChange(s.va, 'resume'), { message: /SECONDARY HAS FAILED OVER/ }, 'a failed-over secondary refuses to be created again');
  } finally {
    await s.emu.stop('powerFail');
  }
});

/** The NV file's remote pair table (directory id 12, nv.ts NVT_REMOTE): where pair p's copy c starts. */
function remoteCopyAt(nv: Buffer, p: number, c: number): number {
  const [a, b] = [nv.subarray(0, 2048), nv.subarray(2048, 4096)];
  const h = b.readUInt32LE(0) === 0x564e4253 && b.readBigUInt64LE(24) > a.readBigUInt64LE(24) ? b : a; // the newer header
  for (let i = 0; i < h.readUInt32LE(40); i++) {
    if (h.readUInt16LE(64 + i * 16) === 12) return h.readUInt32LE(64 + i * 16 + 4) + (p * 2 + c) * h.readUInt32LE(64 + i * 16 + 12); // its record size
  }
  throw new Error('no remote pair table in the NV directory');
}

const GEN = 104; // RemotePair.gen (firmware/remote/pair.ts)

test('a torn remote pair record: the older whole copy counts; with both copies torn the record is dropped and said so, and the volume is a simplex volume the hosts can write', async (t) => {
  let s = await paired('remote-nv-torn');
  const nvPath = path.join(s.dir, 'A', 'nvram.bin');
  const tear = (which: 'newer' | 'both') => {
    const nv = fs.readFileSync(nvPath);
    const [c0, c1] = [remoteCopyAt(nv, 0, 0), remoteCopyAt(nv, 0, 1)];
    const newer = ((nv.readUInt32LE(c1 + GEN) - nv.readUInt32LE(c0 + GEN)) | 0) > 0 ? c1 : c0;
    for (const at of which === 'both' ? [c0, c1] : [newer]) nv[at + 60] ^= 0xff; // a byte the CRC covers
    fs.writeFileSync(nvPath, nv);
  };
  try {
    await s.emu.stop('powerFail');
    tear('newer');
    const lines: string[] = [];
    s = await restartSites(s, DIRECT, (l) => lines.push(l));
    t.like(await s.a.remoteOf(s.va), { role: 'primary', state: 'suspended', reason: 'restart' }, 'the older copy');
    t.false(lines.some((l) => /remote pair record failed its CRC/.test(l)), lines.join('\n'));
    await s.emu.stop('powerFail');
    tear('both');
    lines.length = 0;
    s = await restartSites(s, DIRECT, (l) => lines.push(l));
    t.true(lines.some((l) => /remote: a remote pair record failed its CRC in both copies and was dropped/.test(l)), lines.join('\n'));
    t.deepEqual(await s.a.remoteStatus(), []);
    await s.a.write(1, 0, pattern(4096, 9)); // simplex: local
    t.true((await s.a.read(1, 0, 8)).equals(pattern(4096, 9)));
  } finally {
    await s.emu.stop('powerFail');
  }
});

test('a version 8 image (remote pair records of 128 bytes) is upgraded at boot: the pair and a dirty slot are kept, the records are widened and persisted; resume makes B equal to A', async (t) => {
  const o = { ...DIRECT, destageAgeMs: 600_000 }; // what is written stays dirty in NV
  let s = await startSites('remote-nv-v8', o);
  try {
    await s.a.write(1, 0, pattern(64 * 1024, 1));
    await s.a.remoteCreate({ volume: s.va, to: 'B', toVolume: 'mirror' });
    await untilRemote(s, (x) => x.state === 'pair', 'pair (S100-S108)');
    const dirty = pattern(96 * 1024, 2);
    await s.a.write(1, 256, dirty); // S160-S170; dirty in both arrays' NV
    await untilRemote(s, (x) => x.inFlight === 0, 'nothing in flight');
    const before = await s.a.remoteOf(s.va);
    await s.emu.stop('powerFail');
    for (const array of ['A', 'B']) toVersion(path.join(s.dir, array, 'nvram.bin'), 8);
    const lines: string[] = [];
    s = await restartSites(s, o, (l) => lines.push(l));
    t.is(lines.filter((l) => /nv: image upgraded \(from version, to version\) \(8, 9\)/.test(l)).length, 2, lines.join('\n'));
    t.true(lines.some((l) => /nv: dirty cache slots recovered/.test(l)), lines.join('\n'));
    t.false(lines.some((l) => /remote pair record failed its CRC|rebuilt from the volume table/.test(l)), lines.join('\n'));
    const a = await s.a.remoteOf(s.va);
    t.like(a, { role: 'primary', state: 'suspended', reason: 'restart', peerVolume: 'mirror', mode: before.mode });
    t.true(a.issuingId > before.issuingId, `the lease was kept (${before.issuingId} -> ${a.issuingId})`);
    t.like(await s.b.remoteOf(s.vb), { role: 'secondary', state: 'suspended', reason: 'restart' });
    t.true((await s.a.read(1, 256, 192)).equals(dirty), 'the dirty slot moved with the cache tables');
    // The widened records were persisted: a power cut now brings the pair back from version 9 records.
    s = await restartSites(s, o);
    t.like(await s.a.remoteOf(s.va), { role: 'primary', state: 'suspended', reason: 'restart', peerVolume: 'mirror' });
    await s.a.remoteChange(s.va, 'resume');
    await untilRemote(s, (x) => x.state === 'pair', 'pair after resume');
    await s.a.write(1, 2048, pattern(48 * 1024, 3));
    await untilRemote(s, (x) => x.inFlight === 0, 'nothing in flight');
    await s.b.remoteChange(s.vb, 'failover');
    t.true((await s.a.read(1, 0, 4096)).equals(await s.b.read(1, 0, 4096)), 'B is byte-identical to A');
  } finally {
    await s.emu.stop('powerFail');
  }
});
