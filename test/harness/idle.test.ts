// Idle sessions of a TCP port (issue 7, defect 8): a session with no command in flight that receives
// nothing for the port's idleTimeoutMs is closed by the firmware (SES_HANGUP, docs/hal.md), so idle
// or half-sent connections cannot lock a port; a connection refused because every session is taken
// is told why (REJECT PORT_FULL, docs/protocol.md), in words sanctl prints.
import test from 'ava';
import * as net from 'net';
import * as scsi from '../../lib/scsi';
import * as P from '../../lib/protocol';
import { connect } from '../../host/connect';
import { TransportError } from '../../lib/transport';
import { EXIT_OK, EXIT_TRANSPORT } from '../../host/sanctl';
import { runSanctl } from '../host/run-sanctl';
import { tempDir, startSmall } from './env';
import { rawConnection, commandFrame, tcpPort } from './raw';
import type { Emulator } from '../../harness';

function tcpTopology(idleTimeoutMs: number) {
  return [{ name: 'fe0', iop: 0, transport: 'tcp', port: 0, idleTimeoutMs }, { name: 'q0', iop: 0, transport: 'inproc' }];
}

function targetOf(emu: Emulator): string {
  return emu.array().targets.find((x) => x.port === 'fe0')!.target;
}

const closed = (sock: net.Socket): Promise<void> => new Promise((r) => (sock.destroyed ? r() : sock.once('close', () => r())));

test('eight idle or half-sent connections fill a port; the ninth is told "port fe0 is full: 8 of 8 sessions"; once they time out a fresh client gets in', async (t) => {
  // Virtual time: the hogs stay idle as long as the test likes, however slow the machine, and
  // time out when it advances the clock.
  const idleMs = 1000;
  const emu = await startSmall({ dir: tempDir('idle'), mode: 'deterministic', ports: tcpTopology(idleMs) });
  t.teardown(() => emu.stop());
  const target = targetOf(emu);
  const port = tcpPort(target);
  const hogs = await Promise.all(Array.from({ length: 8 }, () => rawConnection(port)));
  t.teardown(() => { for (const h of hogs) h.sock.destroy(); });
  // One of them sends half a CMD frame and stops.
  hogs[0].sock.write(commandFrame(1, 0, scsi.testUnitReady(), 0, false).subarray(0, 30));
  // The connections are accepted by the kernel at once; wait until the port has put each on a session.
  const fe0 = emu.array().port('fe0') as import('../../hal/channels/ports').TcpPort;
  while (fe0.sessions.some((s) => !s)) await new Promise((r) => setTimeout(r, 5));
  const refused = await runSanctl(['--target', target, 'inquiry']);
  t.is(refused.code, EXIT_TRANSPORT);
  t.is(refused.stderr.trim(), `sanctl: ${target}: port fe0 is full: 8 of 8 sessions`);
  // The library sees the same words in its TransportError.
  const lib = await connect(target);
  const err = await t.throwsAsync(lib.submit({ lun: 0, cdb: scsi.testUnitReady() }), { instanceOf: TransportError });
  t.is(err!.message, `${target}: port fe0 is full: 8 of 8 sessions`);
  t.is((err as TransportError).code, 'REJECT_PORT_FULL');
  await lib.close();
  // The array closes every one of them once it has heard nothing for idleMs (before the half
  // frame's own 2 s TRUNCATED timeout).
  await emu.advance(idleMs / 2);
  t.false(hogs.some((h) => h.sock.destroyed), 'half the idle time: all still open');
  await emu.advance(idleMs);
  await Promise.all(hogs.map((h) => closed(h.sock)));
  t.is(hogs[0].frames.length, 0, 'the half-sent frame was not answered: the session was closed first');
  const fresh = await runSanctl(['--target', target, '--json', 'inquiry']);
  t.is(fresh.code, EXIT_OK, fresh.stderr);
  t.is(JSON.parse(fresh.stdout).vendor, 'SANBOX');
});

test('in virtual time: a session is not closed while a command is in flight, and is closed idleTimeoutMs after its last activity', async (t) => {
  const idleMs = 1000;
  const emu = await startSmall({ dir: tempDir('idlevt'), mode: 'deterministic', ports: tcpTopology(idleMs) });
  t.teardown(() => emu.stop());
  const fe0 = emu.array().port('fe0') as import('../../hal/channels/ports').TcpPort;
  const c = await rawConnection(tcpPort(targetOf(emu)));
  t.teardown(() => c.sock.destroy());
  // A WRITE whose data never comes: the command stays in flight until the data-out timeout (30 s).
  c.sock.write(commandFrame(7, 0, scsi.management(true, scsi.Management.CREATE_VOLUME, 64), 64, true));
  await c.next(P.FrameType.XFER_RDY);
  await emu.advance(10 * idleMs);
  t.truthy(fe0.sessions.find((s) => s), 'ten idle times with a command in flight: the session stays');
  t.false(c.sock.destroyed);
  // The data-out timeout ends the command (DATA PHASE ERROR); from then on the session is idle.
  await emu.advance(30_000);
  const rsp = await c.next(P.FrameType.RSP);
  t.is(P.decodeResponse(rsp.payload)?.status, P.ScsiStatus.CHECK_CONDITION);
  await emu.advance(idleMs / 2);
  t.false(c.sock.destroyed, 'half the idle time after the command ended: still open');
  await emu.advance(idleMs);
  await closed(c.sock);
  t.is(fe0.sessions.filter((s) => s).length, 0);
});
