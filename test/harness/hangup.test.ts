// A graceful hang-up (HANGUP_PROTOCOL, docs/hal.md "Channels"): the binding writes what the tx
// ring holds straight from the ring, and gives the slot back only when no write reads the ring
// any more, so a new connection's bytes never go to the old peer, nor the old peer's last bytes
// get overwritten. Through the real firmware: an NBD port drops a client whose flags it does not
// know (firmware/comm/nbd/nbd.ts drop) while the greeting it sent is still being written, because
// the connection's writes are held here until the test lets them end.
import test from 'ava';
import { Duplex } from 'stream';
import type { TcpPort } from '../../hal/channels/ports';
import type { Emulator } from '../../harness';
import { tempDir, startSmall } from './env';

/** A connection whose writes end only when release() says so; what it was sent is kept. */
class HeldConnection extends Duplex {
  readonly sent: Buffer[] = [];
  private readonly held: Array<() => void> = [];
  override _read(): void { /* bytes come from push() */ }
  override _write(chunk: Buffer, _enc: BufferEncoding, done: (e?: Error | null) => void): void {
    this.sent.push(Buffer.from(chunk)); // a copy now: the ring's bytes are what the check below is about
    this.held.push(() => done());
  }
  get writesHeld(): number { return this.held.length; }
  release(): void { for (const done of this.held.splice(0)) done(); }
}

/** NBD's server greeting (newstyle): NBDMAGIC, IHAVEOPT, the handshake flags. */
const GREETING = Buffer.concat([Buffer.from('NBDMAGIC'), Buffer.from('49484156454f5054', 'hex'), Buffer.from([0, 3])]);

const tick = () => new Promise<void>((r) => setImmediate(r));

/**
 * Settles the array until `done` holds, at most 10 times. The binding hangs up inside a round
 * (the tx doorbell): the run that closes the slot is kicked then, and may come after the settle.
 */
async function settled(emu: Emulator, done: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 10 && !done(); i++) await emu.settle();
  if (!done()) throw new Error(`waited for ${what}: 10 settles of the array did not bring it`);
}

test('a graceful hang-up while a write still reads the tx ring keeps the slot from a new connection until the write ends', async (t) => {
  const emu = await startSmall({
    dir: tempDir('hangup-held'), mode: 'deterministic',
    ports: [{ name: 'nbd0', iop: 0, transport: 'tcp', protocol: 'nbd', port: 0, sessions: 1 }, { name: 'q0', iop: 0, transport: 'inproc' }],
  });
  t.teardown(() => emu.stop());
  const port = emu.array().port('nbd0') as TcpPort;
  const attach = (s: Duplex) => (port as unknown as { attach(s: Duplex, local: string, peer: string): boolean }).attach(s, '127.0.0.1', '127.0.0.1');

  const old = new HeldConnection();
  t.true(attach(old));
  const session = port.sessions[0]!;
  await emu.settle();
  t.deepEqual(Buffer.concat(old.sent), GREETING, 'the greeting is being written from the ring');
  t.is(old.writesHeld, 1);

  const received = new Promise((r) => old.once('data', r)); // after the binding's own listener
  old.push(Buffer.from([0xff, 0xff, 0xff, 0xff])); // client flags no server knows: the firmware drops it
  await received;
  await settled(emu, () => session.slot.free, 'the firmware to close the slot the binding hung up');
  t.is(port.sessions[0], session, 'but the binding keeps it: a write still reads the ring');
  const early = new HeldConnection();
  t.false(attach(early), 'a new connection does not get the slot');
  early.destroy();

  old.release();
  for (let i = 0; i < 10 && port.sessions[0]; i++) await tick(); // the write callbacks run on later turns
  t.is(port.sessions[0], undefined, 'the write has ended: the slot is given back');
  t.deepEqual(Buffer.concat(old.sent), GREETING, 'the old peer got its greeting and nothing else');

  const next = new HeldConnection();
  t.true(attach(next), 'the next connection gets the slot');
  await emu.settle();
  t.deepEqual(Buffer.concat(next.sent), GREETING, 'and a greeting of its own');
  next.release();
  next.destroy();
});
