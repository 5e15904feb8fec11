// host/connect.ts: target URLs, the scheme registry, TCP, and a serial line over a socat pty pair
// (skipped where socat is missing), which must let go of its device when closed.
import test from 'ava';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { spawn, spawnSync } from 'child_process';
import type { Duplex } from 'stream';
import * as P from '../../lib/protocol';
import { CommandTransport, TransportError } from '../../lib/transport';
import { connect, registerTargetScheme } from '../../host/connect';
import { FramedTransport } from '../../host/framed';
import { ScsiClient } from '../../host/client';
import { FakeArray } from './fake-target';

const haveSocat = spawnSync('socat', ['-V']).status === 0;

/** Answers every PING on `stream` with a PONG, as the array does. */
function echoPings(stream: Duplex): void {
  const decoder = new P.FrameDecoder();
  stream.on('data', (chunk: Buffer) => {
    for (const f of decoder.push(chunk)) {
      if (!P.isDecodeError(f) && f.type === P.FrameType.PING) {
        stream.write(P.encodeFrame({ ...f, type: P.FrameType.PONG, source: 1, destination: f.source }, f.payload));
      }
    }
  });
}

test('URLs it cannot use are BAD_TARGET, before anything is opened', async (t) => {
  for (const target of ['nonsense', 'tcp://127.0.0.1', 'serial://', 'serial:///dev/ttyS0?baud=fast', 'ftp://x/y']) {
    t.like(await t.throwsAsync(connect(target), { instanceOf: TransportError }), { code: 'BAD_TARGET' }, target);
  }
});

test('registered schemes open their own transports (the harness registers inproc)', async (t) => {
  let seen: URL | undefined;
  const fake = { queueDepth: 1, target: 'x', submit: async () => { throw new Error('unused'); }, close: async () => undefined } as CommandTransport;
  registerTargetScheme('testscheme:', async (url) => { seen = url; return fake; });
  t.is(await connect('testscheme://array0/fe2'), fake);
  t.is(seen?.host, 'array0');
  t.is(seen?.pathname, '/fe2');
});

test('tcp: connects, pings, closes; a refused connection is CONNECT', async (t) => {
  const server = net.createServer(echoPings);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const { port } = server.address() as net.AddressInfo;
  const transport = await connect(`tcp://127.0.0.1:${port}`) as FramedTransport;
  t.is(transport.target, `tcp://127.0.0.1:${port}`);
  t.true((await transport.ping()) >= 0);
  await transport.close();
  await new Promise((r) => server.close(r));
  t.like(await t.throwsAsync(connect(`tcp://127.0.0.1:${port}`), { instanceOf: TransportError }), { code: 'CONNECT' });
});

test('tcp: data both ways through the socket\'s own receive buffer, frames split between reads', async (t) => {
  const array = new FakeArray();
  const server = net.createServer((socket) => { const link = array.connect(); socket.pipe(link); link.pipe(socket); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const transport = await connect(`tcp://127.0.0.1:${(server.address() as net.AddressInfo).port}`);
  const client = new ScsiClient(transport);
  const volume = await client.createVolume({ name: 'vol', blocks: 4096, blockSize: 512 });
  await client.mapVolume(volume.number, 0, 1);
  const data = Buffer.from(Array.from({ length: 1 << 20 }, (_, i) => (i * 13 + (i >> 11)) & 0xff));
  await Promise.all([0, 1].map((half) => client.write(1, half * 1024, data.subarray(half << 19, (half + 1) << 19))));
  const back = await Promise.all([0, 1, 2, 3].map((q) => client.read(1, q * 512, 512)));
  t.deepEqual(Buffer.concat(back), data);
  await transport.close();
});

/** File descriptors of this process open on `device`. */
function openOn(device: string): number {
  const real = fs.realpathSync(device);
  return fs.readdirSync('/proc/self/fd').filter((fd) => {
    try { return fs.readlinkSync(`/proc/self/fd/${fd}`) === real; } catch { return false; }
  }).length;
}

(haveSocat ? test : test.skip)('serial: over a socat pty pair, ping, then close() lets go of the device', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sanctl-pty-'));
  const [host, dev] = [path.join(dir, 'host'), path.join(dir, 'dev')];
  const socat = spawn('socat', [`pty,raw,echo=0,link=${dev}`, `pty,raw,echo=0,link=${host}`], { stdio: 'ignore' });
  t.teardown(() => { socat.kill(); fs.rmSync(dir, { recursive: true, force: true }); });
  // socat makes the pair when it gets to it (later on a busy machine); it exiting first is a failure.
  while (!(fs.existsSync(host) && fs.existsSync(dev))) {
    if (socat.exitCode !== null) throw new Error(`socat exited (${socat.exitCode}) before making the pty pair`);
    await new Promise((r) => setTimeout(r, 5));
  }
  const { SerialPort } = await import('serialport');
  const array = new SerialPort({ path: dev, baudRate: 115200, hupcl: false, autoOpen: false });
  await new Promise<void>((resolve, reject) => array.open((e) => (e ? reject(e) : resolve())));
  t.teardown(() => new Promise<void>((r) => array.close(() => r())));
  echoPings(array);
  for (let round = 0; round < 2; round++) {
    const transport = await connect(`serial://${host}`) as FramedTransport;
    t.is(openOn(host), 1);
    t.true((await transport.ping(Buffer.from(`round ${round}`))) >= 0);
    await transport.close();
    t.is(openOn(host), 0, 'the device is closed, so the line is free for the next initiator');
  }
});
