// host/iscsi.ts's CommandTransport (what bench/tape.ts drives the array's iSCSI port through):
// commands submitted together go one at a time and each gets its own answer; residuals, their
// direction and sense come through as the framed transport gives them. And its digests' CRC32C,
// code apart from the firmware's kernel, against a third implementation.
import test from 'ava';
import { crc32c as referenceCrc } from '@node-rs/crc32';
import { scriptCrc } from '../../lib/protocol';
import { startIscsi } from './env';
import { IscsiConn, iscsiTransport } from '../../host/iscsi';
import * as scsi from '../../lib/scsi';
import { pattern, read, write, senseOf } from '../harness/env';

test('iscsiTransport: submits queue one at a time, each answered with its own data; residuals and sense as the target sent them', async (t) => {
  const a = await startIscsi('transport');
  t.teardown(() => a.emu.stop());
  const conn = await IscsiConn.connect(a.port);
  await conn.login(a.target);
  let active = 0;
  let most = 0;
  const command = conn.command.bind(conn);
  conn.command = async (...args) => {
    most = Math.max(most, ++active);
    try { return await command(...args); } finally { active--; }
  };
  const tr = iscsiTransport(conn, a.url);
  t.teardown(() => tr.close());
  t.is(tr.queueDepth, 1);
  t.is(tr.target, a.url);

  const one = pattern(8192, 1);
  const two = pattern(8192, 2);
  await Promise.all([write(tr, 1, 0, one), write(tr, 1, 16, two)]);
  const [back1, back2] = await Promise.all([read(tr, 1, 0, 16), read(tr, 1, 16, 16)]);
  t.true(back1.equals(one), 'the first READ has the first WRITE\'s bytes');
  t.true(back2.equals(two), 'the second READ has the second\'s');
  t.is(most, 1, 'never two commands on the connection at once');

  // Two blocks asked for, room for one: overflow, the residual the excess (RFC 7143 11.4.5.2).
  const over = await tr.submit({ lun: 1, cdb: scsi.readWrite(false, 0, 2), dataInLength: 512 });
  t.is(over.status, 0);
  t.true(over.residualOverflow);
  t.is(over.residual, 512);
  t.true(Buffer.from(over.data).equals(one.subarray(0, 512)));
  // One block asked for, room for two, into the caller's buffer: underflow.
  const into = Buffer.alloc(1024, 0xee);
  const under = await tr.submit({ lun: 1, cdb: scsi.readWrite(false, 16, 1), dataInLength: 1024, dataIn: into });
  t.false(under.residualOverflow);
  t.is(under.residual, 512);
  t.is(under.data.length, 512);
  t.is(under.data.buffer, into.buffer, 'the data is a view of the caller\'s buffer');
  t.true(into.subarray(0, 512).equals(two.subarray(0, 512)));

  const sense = await senseOf(read(tr, 1, 16384, 1)); // one past the last block
  t.is(sense.key, 0x05);
  t.is(sense.asc, 0x21);
});

test('the initiator\'s digest CRC32C (lib/protocol scriptCrc) agrees with @node-rs/crc32 at every length a PDU has', (t) => {
  t.is(scriptCrc(Buffer.from('123456789')), 0xe3069283); // CRC-32C's check value
  t.is(scriptCrc(Buffer.alloc(32)), 0x8a9136aa); // RFC 3720 B.4: 32 bytes of zeros
  const data = pattern(262144 + 64, 7);
  for (const n of [0, 1, 7, 8, 48, 52, 255, 256, 257, 4096, 65536, 262144 + 4]) {
    t.is(scriptCrc(data, 3, 3 + n), referenceCrc(data.subarray(3, 3 + n)) >>> 0, `${n} bytes`);
  }
});
