// Opening a CommandTransport from a target URL:
//   tcp://host:port                 a controller's TCP front-end port (framed)
//   serial:///dev/ttyUSB0?baud=N    a serial line, a devboard or a pty pair (framed; default 115200 baud)
//   inproc://array0/fe2             registered by the harness (registerTargetScheme), which owns the array
// Schemes are a registry so the host never imports the harness; the harness adds `inproc` when it loads.

import * as net from 'net';
import { CommandTransport, TransportError } from '../lib/transport';
import { FramedOptions, FramedTransport } from './framed';
import { openSerialLine } from '../lib/serial';

export const DEFAULT_TARGET = 'tcp://127.0.0.1:7450';
export const DEFAULT_BAUD_RATE = 115200;

export type TargetFactory = (url: URL, options: FramedOptions) => Promise<CommandTransport>;

const schemes = new Map<string, TargetFactory>([
  ['tcp', connectTcp],
  ['serial', connectSerial],
]);

/** Makes connect() open `scheme://...` targets with factory (the harness registers `inproc`). */
export function registerTargetScheme(scheme: string, factory: TargetFactory): void {
  schemes.set(scheme.replace(/:$/, '').toLowerCase(), factory);
}

/**
 * Opens the target. Throws TransportError: code BAD_TARGET for a URL it cannot use, CONNECT when
 * the target does not answer.
 */
export async function connect(target: string, options: FramedOptions = {}): Promise<CommandTransport> {
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    throw new TransportError(`"${target}" is not a target URL (tcp://host:port, serial:///dev/tty..., inproc://...)`, 'BAD_TARGET');
  }
  const factory = schemes.get(url.protocol.replace(/:$/, ''));
  if (!factory) {
    throw new TransportError(`unknown target scheme "${url.protocol}" in ${target} (known: ${[...schemes.keys()].join(', ')})`, 'BAD_TARGET');
  }
  return factory(url, { ...options, target });
}

/** Bytes the socket reads at most at once (what Node reads by default too). */
const RECEIVE_BUFFER_BYTES = 64 * 1024;

/**
 * The socket reads into one buffer kept for the connection (onread), not a new Buffer per read,
 * and hands each read to the transport directly (no 'data' events); reads before the transport
 * exists are kept for it. The buffer is ordinary memory, not the CRC kernel's: a copy out of a
 * shared memory goes a byte at a time unless source and target are equally aligned, and frames
 * lie at any offset in a read (data-in copied from there measured 4x slower).
 */
async function connectTcp(url: URL, options: FramedOptions): Promise<CommandTransport> {
  const port = Number(url.port);
  if (!url.hostname || !Number.isInteger(port) || port < 1) throw new TransportError(`${options.target}: tcp targets need a host and a port`, 'BAD_TARGET');
  let transport: FramedTransport | undefined;
  const early: Buffer[] = [];
  const buffer = Buffer.allocUnsafeSlow(RECEIVE_BUFFER_BYTES);
  const callback = (n: number): boolean => {
    if (transport) transport.receive(buffer.subarray(0, n));
    else early.push(Buffer.from(buffer.subarray(0, n)));
    return true;
  };
  const socket = net.connect({ host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port, onread: { buffer, callback } });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', (e) => reject(new TransportError(`${options.target}: ${e.message}`, 'CONNECT')));
    socket.once('connect', resolve);
  });
  socket.removeAllListeners('error');
  socket.setNoDelay(true);
  transport = new FramedTransport(socket, options);
  for (const chunk of early.splice(0)) transport.receive(chunk);
  return transport;
}

async function connectSerial(url: URL, options: FramedOptions): Promise<CommandTransport> {
  const path = decodeURIComponent(url.pathname);
  const baudRate = Number(url.searchParams.get('baud') ?? DEFAULT_BAUD_RATE);
  if (!path || path === '/') throw new TransportError(`${options.target}: serial targets name a device (serial:///dev/ttyUSB0)`, 'BAD_TARGET');
  if (!Number.isInteger(baudRate) || baudRate <= 0) throw new TransportError(`${options.target}: bad baud rate`, 'BAD_TARGET');
  let port: import('serialport').SerialPort;
  try {
    port = await openSerialLine({ path, baudRate });
  } catch (e) {
    throw new TransportError(`${options.target}: ${(e as Error).message}`, 'CONNECT');
  }
  // A serial line keeps what arrived while nobody listened (answers to an earlier initiator that
  // went away): those bytes belong to no exchange of ours, so they go before the first command.
  await new Promise<void>((resolve) => port.flush(() => resolve()));
  // SerialPort's destroy() leaves the device open (and the process alive): close() it.
  const closeStream = (): Promise<void> => new Promise((resolve) => port.close(() => resolve()));
  const transport = new FramedTransport(port, { ...options, closeStream });
  // The array's session on the line outlives any one initiator: what an earlier one left (a
  // partial frame, commands still running, their late answers) is cleared before ours begin.
  try {
    await transport.resynchronise(options.resync);
  } catch (e) {
    await transport.close().catch(() => undefined);
    throw e;
  }
  return transport;
}
