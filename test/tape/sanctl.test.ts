// sanctl tape: list, move, load/unload, write a file as a labelled tape and read it back, --json,
// and errors in words, against the firmware (in-process).
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import { tempDir, pattern } from '../harness/env';
import { startLibrary } from './env';
import { runSanctl } from '../host/run-sanctl';

test('sanctl tape write/read round-trips a file through a labelled tape; list, move, load, unload; errors exit 1 and say why', async (t) => {
  const dir = tempDir('tape-sanctl');
  const emu = await startLibrary({ dir });
  const connect = async () => emu.connect();
  try {
    const src = path.join(dir, 'payload.bin');
    fs.writeFileSync(src, pattern(100_000, 9));
    const w = await runSanctl(['--json', 'tape', 'write', 'SB0001L5', src], { connect });
    t.is(w.code, 0, w.stderr);
    t.is(JSON.parse(w.stdout).bytes, 100_000);
    const dst = path.join(dir, 'back.bin');
    const r = await runSanctl(['--json', 'tape', 'read', 'SB0001L5', dst], { connect });
    t.is(r.code, 0, r.stderr);
    t.like(JSON.parse(r.stdout), { serial: 'SB0001', name: 'PAYLOAD.BIN', blocks: 4, bytes: 100_000 });
    t.true(fs.readFileSync(dst).equals(fs.readFileSync(src)));
    const list = JSON.parse((await runSanctl(['--json', 'tape', 'list'], { connect })).stdout);
    t.deepEqual(list.elements.filter((e: { full: boolean }) => e.full).map((e: { barcode: string; address: number }) => [e.barcode, e.address]),
      [['SB0001L5', 0x1000], ['SB0002L5', 0x1001], ['SB0003L5', 0x1002]]);
    t.is((await runSanctl(['tape', 'move', 'SB0002L5', '0x10'], { connect })).code, 0); // to the import/export element
    const ld = await runSanctl(['--json', 'tape', 'load', 'SB0002L5'], { connect });
    t.is(ld.code, 0, ld.stderr);
    t.is(JSON.parse(ld.stdout).lun, 257);
    const un = await runSanctl(['--json', 'tape', 'unload', 'SB0002L5'], { connect });
    t.is(un.code, 0, un.stderr);
    t.is(JSON.parse(un.stdout).element, 0x10); // back where it came from
    const human = await runSanctl(['tape', 'list'], { connect });
    t.regex(human.stdout, /0010h\s+import\/export\s+SB0002L5/);
    const bad = await runSanctl(['tape', 'move', '0x1000', '0x1002'], { connect });
    t.is(bad.code, 1);
    t.regex(bad.stderr, /MEDIUM DESTINATION ELEMENT FULL/);
    const none = await runSanctl(['tape', 'read', 'NOPE01', dst], { connect });
    t.is(none.code, 1);
    t.regex(none.stderr, /no cartridge with barcode NOPE01/);
    const luns = JSON.parse((await runSanctl(['--json', 'luns'], { connect })).stdout);
    t.deepEqual(luns.luns.filter((l: { lun: number }) => l.lun >= 256).map((l: { device: string }) => l.device), ['tape library (changer)', 'tape drive', 'tape drive']);
  } finally { await emu.stop(); }
});
