// The fuzzer through the real firmware: a fixed-seed run with every check on, the same seed
// replaying exactly, and each check shown to fail against a target broken on purpose (a check that
// cannot fail is no check).
import test from 'ava';
import * as A from '../../hal/abi';
import * as scsi from '../../lib/scsi';
import { fuzz, replay, type Summary } from '../../fuzz/fuzzer';
import { FuzzTarget, CANARY_PORT, FUZZ_PORT } from '../../fuzz/target';
import { Initiator } from '../../fuzz/initiator';
import { CANARY_LUN_BASE } from '../../fuzz/canary';
import { T } from '../../fuzz/wire';
import { ByteRing } from '../../hal/ring';

const SEED = 20251128;

function checks(s: Summary): string[] {
  return (s.failure?.violations ?? []).map((v) => `${v.check}: ${v.detail}`);
}

test('a fixed-seed run: every frame answered or counted, the session kept, the canaries intact, no trap', async (t) => {
  const s = await fuzz({ seed: SEED, frames: 150_000 });
  t.deepEqual(checks(s), []);
  t.is(s.traps, 0);
  t.true(s.frames >= 150_000);
  for (const reason of ['BAD_CRC', 'TRUNCATED', 'OVERSIZE', 'UNKNOWN_TYPE', 'UNKNOWN_TAG', 'PROTOCOL', 'WRONG_DESTINATION']) {
    t.true((s.rejectsByReason[reason] ?? 0) > 100, `REJECT ${reason}: ${s.rejectsByReason[reason]}`);
  }
  for (const cls of ['cmd', 'dataOut', 'dataOut:bad', 'ping', 'garbage', 'oversize', 'nested', 'mut:bitflip', 'mut:lengthLie', 'mut:replay', 'cmd:delete']) {
    t.true((s.byClass[cls] ?? 0) > 0, `frames of class ${cls}`);
  }
  t.true(s.commandsByStatus.GOOD > 1000, 'commands that did their work, not only errors');
  for (const status of ['VOLUME NAME ALREADY EXISTS', 'LUN ALREADY MAPPED', 'NO SUCH VOLUME', 'LOGICAL BLOCK ADDRESS OUT OF RANGE', 'OVERLAPPED COMMANDS ATTEMPTED', 'DATA PHASE ERROR']) {
    t.true(Object.keys(s.commandsByStatus).some((k) => k.endsWith(status)), `some command ended ${status}`);
  }
  t.true(s.model.badSofBytes > 0 && s.model.commands > 10_000);
});

test('the same seed replays the same run', async (t) => {
  const strip = (s: Summary) => ({ ...s, seconds: 0, cpuSeconds: 0, framesPerSecond: 0 });
  const a = await fuzz({ seed: 5, frames: 10_000 });
  const b = await fuzz({ seed: 5, frames: 10_000 });
  t.deepEqual(strip(a), strip(b));
  t.notDeepEqual(strip(a).byClass, strip(await fuzz({ seed: 6, frames: 10_000 })).byClass);
});

// ---- the checks fail when the target is wrong ------------------------------------------------------

/** The session descriptor of the fuzzer's session (the first of its port). */
function fuzzSession(x: FuzzTarget): number {
  return x.array.mem.u32(A.MAP_ADDR + A.MAP_PORT_TABLE + FUZZ_PORT * A.MAP_PORT_BYTES + A.MPORT_SESSIONS_ADDR);
}

/** A short run whose target `breakIt` changes behind the fuzzer's back after the first batch's checks. */
function brokenAfterFirstBatch(breakIt: (x: FuzzTarget) => void, o: { frames?: number; canaryEvery?: number } = {}): Promise<Summary> {
  return fuzz({
    seed: 3, frames: o.frames ?? 6000, reduce: false, canaryEvery: o.canaryEvery,
    tamper: { afterChecks: (x, batch) => { if (batch === 0) breakIt(x); } },
  });
}

/** Commands sent on the canary port, where the fuzzer does not look. */
function onPortOne(f: (c: Initiator) => void) {
  return (x: FuzzTarget): void => {
    const c = new Initiator(x, CANARY_PORT);
    f(c);
    c.close();
  };
}

test('a REJECT the controller does not send is missed', async (t) => {
  let n = 0;
  const s = await fuzz({ seed: 3, frames: 4000, reduce: false, tamper: { dropTx: (type) => type === T.REJECT && ++n === 40 } });
  t.true(checks(s).some((c) => c.startsWith('answers:')), checks(s).join('\n'));
});

test('a PONG the controller does not send is missed', async (t) => {
  let n = 0;
  const s = await fuzz({ seed: 3, frames: 4000, reduce: false, tamper: { dropTx: (type) => type === T.PONG && ++n === 10 } });
  t.true(checks(s).some((c) => c.startsWith('answers:')), checks(s).join('\n'));
});

// The controller sends the 100th RSP (seed 3: MODE SENSE(6), tag 128) and the fuzzer does not see
// it: the fuzzer waits for the answer, jumping virtual time to the controller's timers; the
// controller, holding no command of the session, closes it as idle 60 s later (HANGUP_IDLE). The
// fuzzer once ignored that hang-up and went on writing into the closed session's rx ring, which the
// controller no longer reads: when the run had more than a ring's worth left to send (as it has since
// c916b38, the SBC-4 block commands, changed seed 3's course: git bisect) its send loop spun for ever
// at virtual 90 s. Now the fuzzer closes the session as a binding does and reports the hang,
// naming the command.
test('a command the controller does not answer is a hang', async (t) => {
  let n = 0;
  let dropped = -1;
  const s = await fuzz({ seed: 3, frames: 4000, reduce: false, tamper: {
    dropTx: (type, tag) => {
      if (type !== T.RSP || ++n !== 100) return false;
      dropped = tag;
      return true;
    },
  } });
  const hang = checks(s).find((c) => c.startsWith('hang:'));
  t.truthy(hang, checks(s).join('\n'));
  t.regex(hang!, new RegExp(`tag ${dropped}: [A-Z][A-Za-z ()0-9/]+ at LUN \\d+, CDB `), 'the command named by tag and name');
});

// A controller that stops reading the fuzzer's session (its descriptor now names another slot's rx
// ring, which nobody writes): the fuzzer's rx ring fills; the fuzzer lets virtual time pass while it
// waits for room, so the run ends (here the controller closes the session it thinks idle) instead of
// spinning with the clock stopped.
test('a session the controller stops reading ends the run with a hang', async (t) => {
  const s = await brokenAfterFirstBatch((x) => {
    const d = fuzzSession(x);
    x.array.mem.setU32(d + A.SES_RX, x.array.mem.u32(d + 3 * A.SESSION_BYTES + A.SES_RX));
  });
  t.true(checks(s).some((c) => c.startsWith('parser:')), checks(s).join('\n'));
  t.true(checks(s).some((c) => c.startsWith('hang:') && c.includes('never answered')), checks(s).join('\n'));
});

test('a frame error counted that nobody sent breaks the accounting', async (t) => {
  const s = await fuzz({
    seed: 3, frames: 4000, reduce: false,
    tamper: { beforeChecks: (x) => { const a = x.array.mem.u32(A.MAP_ADDR + A.MAP_IOP_TABLE + A.MIOP_STATS) + A.STAT_FERR_BAD_CRC * 8; x.array.mem.view.setBigUint64(a, x.array.mem.view.getBigUint64(a, true) + 1n, true); } },
  });
  t.true(checks(s).some((c) => c.startsWith('accounting: BAD_CRC')), checks(s).join('\n'));
});

test('a write that reaches a canary is found when the canaries are read back', async (t) => {
  const s = await brokenAfterFirstBatch(onPortOne((c) => c.ok(CANARY_LUN_BASE + 1, scsi.readWrite(true, 7, 1), { out: Buffer.alloc(4096, 0x55) })), { canaryEvery: 1 });
  t.true(checks(s).some((c) => c.startsWith('canary: canary canary-b') && c.includes('first difference at byte 28672')), checks(s).join('\n'));
});

test('a LUN mapped where the session cannot have mapped it is found, and commands that reach it', async (t) => {
  const s = await brokenAfterFirstBatch(onPortOne((c) => {
    for (let lun = 64; lun < 256; lun++) c.ok(0, scsi.management(true, scsi.Management.MAP_VOLUME, 8), { out: scsi.mapParameters(0, FUZZ_PORT, lun) });
  }));
  t.true(checks(s).some((c) => c.startsWith('isolation:') && c.includes('which the session cannot see')), checks(s).join('\n'));
});

test('bytes the parser takes that the protocol does not account for are found', async (t) => {
  const s = await fuzz({
    seed: 3, frames: 4000, reduce: false,
    tamper: {
      beforeChecks: (x, batch) => {
        if (batch !== 0) return;
        // The start of a frame slipped into the fuzzer's rx ring behind the reference receiver's back.
        const head = Buffer.alloc(24);
        head.writeUInt32BE(0xbcb55656, 0);
        head[4] = T.PING;
        head.writeUInt16BE(2112, 14);
        new ByteRing(x.array.mem, x.array.mem.u32(fuzzSession(x) + A.SES_RX)).write(head);
      },
    },
  });
  t.true(checks(s).some((c) => c.startsWith('parser:')), checks(s).join('\n'));
});

test('a firmware that traps is reported as a trap', async (t) => {
  // The fuzzer's session's rx ring pointer aimed past the end of memory: the next poll traps.
  const s = await brokenAfterFirstBatch((x) => x.array.mem.setU32(fuzzSession(x) + A.SES_RX, 0xffffff00));
  t.is(s.traps, 1);
  t.true(checks(s).some((c) => c.startsWith('trap:') && c.includes('memory access out of bounds')), checks(s).join('\n'));
});

test('the audit finds tables that do not add up', async (t) => {
  const { tableProblems } = await import('../../fuzz/fuzzer');
  const ok = tableProblems([], [], [{ index: 0, name: 'd0', scheduler: 'c-look', state: 'ok', sectors: 128 * 10, freeChunks: 10, registeredRequests: 0, mediumErrors: 0 }]);
  t.true(ok.some((p) => p.includes('canary volume 1020 is gone')), 'a missing canary');
  // 2 chunks of the volume and the medium's label chunk.
  const space = tableProblems([{ number: 1, name: 'v', blockSize: 512, placement: 'linear', media: [0], state: 'online', blocks: 256, dirtySlots: 0, allocatedBytes: 2 * 65536 }], [],
    [{ index: 0, name: 'd0', scheduler: 'c-look', state: 'ok', sectors: 128 * 10, freeChunks: 10, registeredRequests: 0, mediumErrors: 0 }]);
  t.true(space.some((p) => p === 'the media have 0 chunks in use, the volumes need 3'), space.join('\n'));
});

// ---- regressions the fuzzer cut down -------------------------------------------------------------

// Issue 7, defects 1 and 4: a WRITE(16) with FUA to LUN 3 waits for its data, DELETE VOLUME with
// FORCE deletes the volume under it, the data arrives. Before delete quiesced the volume the write
// committed into slots of the deleted volume that the disk IOP could never destage, and the FUA
// write and every later flush waited for ever (the fuzzer, seed 3, cut down to these four frames).
test('DELETE VOLUME while a FUA WRITE to it waits for its data: the write ends and the array flushes', async (t) => {
  const cmd = (tag: number, lun: number, cdb: string, expected: number, flags: number) => {
    const b = Buffer.alloc(32 + 16 + cdb.length / 2);
    b.writeUInt32BE(0xbcb55656, 0); b[4] = T.CMD; b.writeUInt16BE(tag, 6); b.writeUInt16BE(0x0100, 8); b.writeUInt16BE(1, 10);
    b.writeUInt16BE(16 + cdb.length / 2, 14); b[24 + 1] = lun; b[24 + 9] = flags; b[24 + 10] = cdb.length / 2; b.writeUInt32BE(expected, 24 + 12);
    Buffer.from(cdb, 'hex').copy(b, 24 + 16);
    return b;
  };
  const data = (tag: number, offset: number, n: number, last: boolean) => {
    const b = Buffer.alloc(32 + n, 0x5a);
    b.writeUInt32BE(0xbcb55656, 0); b[4] = T.DATA_OUT; b[5] = last ? 1 : 0; b.writeUInt16BE(tag, 6); b.writeUInt16BE(0x0100, 8); b.writeUInt16BE(1, 10);
    b.writeUInt16BE(n, 14); b.writeUInt32BE(offset, 16);
    return b;
  };
  const { endFrame } = await import('../../lib/protocol');
  const seal = (b: Buffer) => { endFrame(b, 0, b.length - 32); return b; };
  const v = await replay(1, [[
    seal(cmd(185, 3, '8a080000000000000000000000060000', 3072, 1)), // WRITE(16) FUA, LBA 0, 6 blocks, LUN 3 (volume 2)
    seal(cmd(214, 0, 'c1020000000200000000000000000100', 0, 0)), // DELETE VOLUME 2, FORCE
    seal(data(185, 0, 2048, false)), seal(data(185, 2048, 1024, true)),
  ]]);
  t.deepEqual(v, []);
});
