// sanctl backup and restore against the firmware (in-process): a volume to a labelled tape by
// EXTENDED COPY and back, --json, a range, and the errors in words.
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import { runSanctl } from '../host/run-sanctl';
import { rig, volumeData, BLOCKS } from './env';

/** An AWS tape image's files: the record lengths between tapemarks (6-byte headers: this length, the previous, flags). */
function awsFiles(img: Buffer): number[][] {
  const files: number[][] = [[]];
  let record = 0;
  for (let at = 0; at + 6 <= img.length;) {
    const len = img.readUInt16LE(at);
    const flags = img[at + 4];
    at += 6 + len;
    if (flags & 0x40) { files.push([]); continue; } // tapemark
    record += len;
    if (flags & 0x20) { files[files.length - 1].push(record); record = 0; } // end of record
  }
  return files;
}

test('sanctl backup/restore: a volume to tape and back byte-identical (--json), a range, errors exit non-zero and say why', async (t) => {
  const r = await rig('xcopy-sanctl');
  const connect = async () => r.emu.connect();
  try {
    const b = await runSanctl(['--json', 'backup', 'src', '--tape', 'SB0001L5'], { connect });
    t.is(b.code, 0, b.stderr);
    t.like(JSON.parse(b.stdout), { barcode: 'SB0001L5', volume: 'src', bytes: BLOCKS * 512, records: 256, split: false });
    const rs = await runSanctl(['--json', 'restore', 'SB0001L5', 'spare'], { connect });
    t.is(rs.code, 0, rs.stderr);
    t.like(JSON.parse(rs.stdout), { barcode: 'SB0001L5', volume: 'spare', from: 'src', blocks: BLOCKS, blockSize: 512 });
    t.true((await volumeData(r.s, 3)).equals(r.ref), 'restored byte-identical');
    const part = await runSanctl(['backup', 'src', '--tape', 'SB0002L5', '--range', '64+100'], { connect });
    t.is(part.code, 0, part.stderr);
    t.regex(part.stdout, /backed up 50 KiB of src to SB0002L5 \(2 records/);
    // What the copy manager wrote, read from the AWS image itself: the data file (after the fourth
    // tapemark: VOL1 HDR | info | EOF | HDR) holds the range's bytes exactly, nothing more.
    t.deepEqual(awsFiles(fs.readFileSync(path.join(r.dir, 'a0', 'library0', 'SB0002L5.aws')))[4], [32768, 100 * 512 - 32768], 'the range, exactly');
    const tgt = await runSanctl(['restore', 'SB0002L5', 'tgt'], { connect });
    t.is(tgt.code, 0, tgt.stderr);
    t.regex(tgt.stdout, /into tgt at LBA 64$/m);
    // The range goes back to its own LBAs (64..163), not over LBA 0 (the volume information keeps its LBA).
    const restored = await volumeData(r.s, 2, 164);
    t.true(restored.subarray(64 * 512).equals(r.ref.subarray(64 * 512, 164 * 512)), 'the range at its LBA, the last record shorter than 32 KiB');
    t.true(restored.subarray(0, 64 * 512).equals(Buffer.alloc(64 * 512)), 'the blocks before the range untouched');
    const noTape = await runSanctl(['backup', 'src'], { connect });
    t.is(noTape.code, 2);
    t.regex(noTape.stderr, /--tape/);
    const badRange = await runSanctl(['backup', 'src', '--tape', 'SB0002L5', '--range', '5'], { connect });
    t.is(badRange.code, 2);
    t.regex(badRange.stderr, /LBA\+COUNT/);
    const past = await runSanctl(['backup', 'src', '--tape', 'SB0002L5', '--range', `${BLOCKS - 1}+2`], { connect });
    t.is(past.code, 1);
    t.regex(past.stderr, /past the end/);
    const wp = await runSanctl(['backup', 'src', '--tape', 'SB0003L5'], { connect });
    t.is(wp.code, 1);
    t.regex(wp.stderr, /COPY ABORTED: THIRD PARTY DEVICE FAILURE; the copy target answered DATA PROTECT, WRITE PROTECTED/);
    const wrong = await runSanctl(['restore', 'SB0003L5', 'spare'], { connect });
    t.is(wrong.code, 1);
    t.regex(wrong.stderr, /expected VOL1|not the labelled tape|end of data/);
  } finally { await r.emu.stop(); }
});
