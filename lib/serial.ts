// Serial lines (node serialport) as the host and the harness open them: a devboard's UART, or one
// end of the socat pty pair that stands in for it.
//
// Why this file exists: on Linux and macOS serialport waits for a non-blocking fd through one
// uv_poll handle per port (@serialport/bindings-cpp's Poller). Asking it for one event
// restarts the handle with that event alone (`uv_poll_start(handle, events)`, not the union of
// what is awaited), so a read that starts waiting while a write waits for room cancels the
// write's wake-up, and the other way round. On a full-duplex line that is a stall: the writer
// sleeps until some byte happens to arrive. Over a pty it showed as frames cut for seconds (the
// array's 2 s TRUNCATED), commands with no answer for 60 s, and data of one command landing in
// another's buffer once the line was out of step (docs/design-notes.md, "Serial lines").
// openSerialLine() makes every request ask for everything still awaited.

import type { SerialPort } from 'serialport';

/** The event bits of the binding's Poller (bindings-cpp EVENTS). */
const READABLE = 1;
const WRITABLE = 2;
const DISCONNECT = 4;

interface PollerLike {
  poll(flags?: number): void;
  listenerCount(event: string): number;
}

export interface SerialLineOptions {
  path: string;
  baudRate: number;
}

/**
 * Opens a serial device raw (8N1, no flow control), touching no modem lines: no DTR/RTS, no
 * hang-up on close (a pty has none, a devboard's UART needs none). Rejects with the device's error.
 */
export async function openSerialLine(options: SerialLineOptions): Promise<SerialPort> {
  // Loaded here: a program that never opens a serial line never loads the native binding.
  const { SerialPort: Port } = await import('serialport');
  const port = new Port({ path: options.path, baudRate: options.baudRate, autoOpen: false, hupcl: false });
  await new Promise<void>((resolve, reject) => port.open((e) => (e ? reject(e) : resolve())));
  pollForEverythingAwaited(port);
  return port;
}

/**
 * Makes the port's Poller ask for the union of what its waiters await whenever one of them asks
 * for something. A port without a Poller (Windows: overlapped I/O) is left as it is.
 */
export function pollForEverythingAwaited(port: SerialPort): void {
  const poller = (port as unknown as { port?: { poller?: PollerLike } }).port?.poller;
  if (!poller || typeof poller.poll !== 'function') return;
  const request = poller.poll.bind(poller);
  poller.poll = (flags = 0) => request(flags
    | (poller.listenerCount('readable') > 0 ? READABLE : 0)
    | (poller.listenerCount('writable') > 0 ? WRITABLE : 0)
    | (poller.listenerCount('disconnect') > 0 ? DISCONNECT : 0));
}
