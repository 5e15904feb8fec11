// Threading a cartridge (docs/tape.md, "The mechanism"): AwsImage.open indexes the image with its
// reads on libuv's pool, a window of headers at a time, so the array's event loop goes on serving
// the other channels while a long cartridge is scanned; the index is the same whether records are
// short (many headers per window) or span blocks (only the headers are read), and a tail torn by a
// crash is cut off wherever it was torn.
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import { AwsImage, SCAN_WINDOW, AWS_HEADER_BYTES } from '../../hal/tape/aws';
import { Emulator } from '../../harness';
import { tempDir, pattern, run } from '../harness/env';
import { libraryTopology, libraryDir, cdb, blockSizeList, CHANGER, DRIVE0, DRIVE1, SLOT0, DT0, DT1 } from './env';

/** Writes `records` (and a tapemark where the entry is null) into a new image; returns what the index should say. */
async function build(file: string, records: Array<Buffer | null>): Promise<Array<{ length: number; mark: boolean }>> {
  const img = await AwsImage.open(file);
  try {
    for (const r of records) {
      if (r) await img.writeRecordsAsync(img.objects.length, [r]);
      else await img.writeMarksAsync(img.objects.length, 1);
    }
    await img.sync();
  } finally { img.close(); }
  return records.map((r) => ({ length: r ? r.length : 0, mark: r === null }));
}

/** `length` bytes of a pattern (any length). */
const bytes = (length: number, seed: number) => pattern(Math.ceil(length / 4) * 4, seed).subarray(0, length);
const shape = (img: AwsImage) => img.objects.map((o) => ({ length: o.length, mark: o.mark }));

test('open indexes short records (many headers a window, one straddling its end) and records that span blocks (headers only) alike', async (t) => {
  const file = path.join(tempDir('aws-index'), 'x.aws');
  // 900 records of 80 bytes cross the first window's end; then records of one, two and four blocks, marks, short ones again.
  const records: Array<Buffer | null> = [
    ...Array.from({ length: 900 }, (_, i) => bytes(80, i)), null,
    bytes(65535, 1), bytes(65536, 2), bytes(200_000, 3), null, null,
    bytes(0, 4), bytes(3001, 5), bytes(131070, 6), bytes(10, 7), null,
  ];
  const want = await build(file, records);
  t.true(900 * (80 + AWS_HEADER_BYTES) > SCAN_WINDOW, 'the short records fill more than one window');
  const img = await AwsImage.open(file);
  try {
    t.deepEqual(shape(img), want);
    t.is(img.end, fs.statSync(file).size);
    t.is(img.tornBytes, 0);
    for (const i of [0, 899, 901, 902, 903, 906, 907, 908, 909]) {
      t.deepEqual(await img.readRecord(i, 1 << 20), records[i], `record ${i}`);
    }
    checkMarks(t, img);
    // Cut back into the second file and go on writing there: the counts follow.
    await img.truncateAtAsync(904);
    await img.writeMarksAsync(904, 2);
    await img.writeRecordsAsync(906, [bytes(5, 1), bytes(6, 2)]);
    checkMarks(t, img);
    t.deepEqual([img.marksBefore(908), img.fileStart(3), img.fileStart(4)], [3, 906, -1]);
  } finally { img.close(); }
});

/** The logical file of every position and the start of every file, against a count from BOT. */
function checkMarks(t: import('ava').ExecutionContext, img: AwsImage): void {
  let marks = 0;
  const starts = [0];
  for (let pos = 0; pos <= img.objects.length; pos++) {
    if (img.marksBefore(pos) !== marks) { t.fail(`position ${pos}: ${img.marksBefore(pos)} marks before it, counted ${marks}`); return; }
    if (pos < img.objects.length && img.objects[pos].mark) { marks++; starts.push(pos + 1); }
  }
  t.deepEqual(starts.map((_, f) => img.fileStart(f)), starts);
  t.is(img.fileStart(starts.length), -1);
}

test('a tail torn anywhere (in a header, in a block\'s data, at a block boundary of a spanning record) is cut off at open', async (t) => {
  const dir = tempDir('aws-torn');
  const whole = path.join(dir, 'whole.aws');
  const records = [bytes(100, 1), null, bytes(150_001, 2)];
  await build(whole, records);
  const image = fs.readFileSync(whole);
  const last = image.length - (150_001 + 3 * AWS_HEADER_BYTES); // where the spanning record starts
  const block = AWS_HEADER_BYTES + 65535;
  const cuts = [last + 1, last + 5, last + 6, last + 1000, last + block, last + block + 3, last + 2 * block + 10, image.length - 1];
  for (const cut of cuts) {
    const file = path.join(dir, `cut${cut}.aws`);
    fs.writeFileSync(file, image.subarray(0, cut));
    const img = await AwsImage.open(file);
    try {
      t.deepEqual(shape(img), [{ length: 100, mark: false }, { length: 0, mark: true }], `cut at ${cut}`);
      t.deepEqual([img.end, img.tornBytes, fs.statSync(file).size], [last, cut - last, last], `cut at ${cut}`);
    } finally { img.close(); }
  }
});

test('the scan yields to the event loop between windows: a cartridge of short records is indexed while other callbacks run', async (t) => {
  const file = path.join(tempDir('aws-yield'), 'x.aws');
  const n = 40_000;
  const img0 = await AwsImage.open(file);
  try {
    for (let i = 0; i < n; i += 4000) await img0.writeRecordsAsync(i, Array.from({ length: 4000 }, (_, k) => pattern(16, i + k)));
  } finally { img0.close(); }
  const windows = Math.ceil(fs.statSync(file).size / SCAN_WINDOW);
  let turns = 0;
  let scanning = true;
  const tick = () => { if (scanning) { turns++; setImmediate(tick); } };
  setImmediate(tick);
  const img = await AwsImage.open(file);
  scanning = false;
  try {
    t.is(img.objects.length, n);
    t.true(windows >= 10, `${windows} windows`);
    t.true(turns >= windows - 1, `${turns} turns of the event loop during a scan of ${windows} windows`);
  } finally { img.close(); }
});

test('a LOAD of a long cartridge does not hold up the array: another drive\'s command is answered while the image is being scanned', async (t) => {
  const dir = tempDir('tape-load-scan');
  fs.mkdirSync(libraryDir(dir), { recursive: true });
  const img0 = await AwsImage.open(path.join(libraryDir(dir), 'SB0001L5.aws'));
  const n = 200_000; // 200,000 headers: about 70 windows, each a pool read and a turn of the event loop
  try {
    for (let i = 0; i < n; i += 10_000) await img0.writeRecordsAsync(i, Array.from({ length: 10_000 }, (_, k) => pattern(16, i + k)));
  } finally { img0.close(); }
  const emu = await Emulator.start(libraryTopology({
    dir, mode: 'realtime',
    library: { timing: { loadMs: 0, unloadMs: 0, moveMs: 0 }, cartridges: [{ barcode: 'SB0001L5', size: '64MiB' }, { barcode: 'SB0002L5', size: '4MiB' }] },
  }), { debug: true });
  try {
    const a = emu.connect();
    const b = emu.connect();
    await run(a, CHANGER, cdb.moveMedium(SLOT0, DT0));
    await run(b, CHANGER, cdb.moveMedium(SLOT0 + 1, DT1));
    await run(b, DRIVE1, cdb.load());
    const tape = emu.array().tape!;
    let loaded = false;
    const load = run(a, DRIVE0, cdb.load()).then(() => { loaded = true; });
    // The binding has started the LOAD (its I/O is in flight): wait for that event, a turn at a time (bounded).
    for (let i = 0; !tape.ioBusy; i++) {
      if (i > 100_000 || loaded) throw new Error('the LOAD never went to the pool');
      await new Promise((r) => setImmediate(r));
    }
    await run(b, DRIVE1, cdb.tur()); // served by the array meanwhile
    t.false(loaded, 'drive1 answered before drive0\'s LOAD ended');
    t.true(tape.ioBusy, 'the scan was still on the pool when drive1 answered');
    await load;
    const pos = await run(a, DRIVE0, cdb.space(3, 0)); // to the end of data: the index holds every record
    t.is(pos.status, 0);
    const rp = await run(a, DRIVE0, cdb.readPosition(), { inLength: 20 });
    t.is(Buffer.from(rp.data).readUInt32BE(4), n);
  } finally { await emu.stop(); }
});

test('a fixed-mode WRITE of 131072 two-byte blocks (256 KiB) is written, indexed and read back whole', async (t) => {
  const emu = await Emulator.start(libraryTopology({ dir: tempDir('tape-many-blocks'), mode: 'deterministic' }), { debug: true });
  try {
    const q = emu.connect();
    await run(q, CHANGER, cdb.moveMedium(SLOT0, DT0));
    await run(q, DRIVE0, cdb.load());
    await run(q, DRIVE0, cdb.modeSelect6(12), { out: blockSizeList(2) });
    const data = pattern(256 * 1024, 9);
    const w = await q.submit({ lun: DRIVE0, cdb: cdb.write(data.length / 2, true), dataOut: data });
    t.is(w.status, 0, 'the WRITE is GOOD (it was CHECK CONDITION 04h/44h: the index update threw)');
    const rp = await run(q, DRIVE0, cdb.readPosition(), { inLength: 20 });
    t.is(Buffer.from(rp.data).readUInt32BE(4), data.length / 2);
    await run(q, DRIVE0, cdb.rewind());
    const r = await run(q, DRIVE0, cdb.read(data.length / 2, { fixed: true }), { inLength: data.length });
    t.true(Buffer.from(r.data).equals(data));
  } finally { await emu.stop(); }
});
