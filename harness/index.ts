// The emulator: a topology's arrays, each with its driver, and the run's trace. This is the API
// the CLI (`sanbox run`), the tests and the benchmarks use.
import * as A from '../hal/abi';
import { ArrayController, type ControlResult } from './array';
import { Driver, RealtimeDriver, DeterministicDriver } from './driver';
import { TraceWriter } from './trace';
import { DirectoryLock } from './lock';
import { loadTopology, parseTopology, Topology, Mode } from './topology';
import { CommandTransport, TransportError } from '../lib/transport';
import { registerTargetScheme } from '../host/connect';

export { ArrayController, BootError, FirmwareAbort, describeControl } from './array';
export type { ControlResult, StuckSlot } from './array';
export { loadTopology, parseTopology, TopologyError } from './topology';
export { ArrayDirectoryInUse } from './lock';
export type { Topology } from './topology';

export interface StartOptions {
  /** Overrides the topology's mode and seed. */
  mode?: Mode;
  seed?: number;
  /** Use the debug firmware image (assertions on). */
  debug?: boolean;
  /** Boot and diagnostic lines; default: none. */
  log?: (line: string) => void;
  /** Relative paths of a topology given as an object resolve against this (default: cwd). */
  baseDir?: string;
  /** Where NV and file-medium I/O runs (ArrayOptions.io): 'threads' (default) or 'inline'. */
  io?: 'threads' | 'inline';
}

export type StopHow = 'graceful' | 'powerFail';

/** Running emulators' arrays by name, for `inproc://<array>/<port>` targets of host/connect. */
const running = new Map<string, ArrayController>();
registerTargetScheme('inproc', async (url) => {
  const a = running.get(url.hostname);
  if (!a) throw new TransportError(`${url.href}: no array ${JSON.stringify(url.hostname)} runs in this process`, 'CONNECT');
  return a.openSession(url.pathname.replace(/^\//, '') || undefined);
});

export class Emulator {
  private stopped = false;

  private constructor(
    readonly topology: Topology,
    readonly arrays: ArrayController[],
    readonly drivers: Driver[],
    private readonly trace: TraceWriter,
    private readonly locks: DirectoryLock[],
  ) {}

  /** Boots every array of a topology: a file, a topology document (as in a file), or the embedded default. */
  static async start(topology?: string | object, options: StartOptions = {}): Promise<Emulator> {
    let topo: Topology = typeof topology === 'string' || topology === undefined ? loadTopology(topology)
      : parseTopology(topology, options.baseDir ?? process.cwd());
    topo = { ...topo, mode: options.mode ?? topo.mode, seed: options.seed ?? topo.seed };
    const log = options.log ?? (() => undefined);
    // The array's end of a link (its link unit in the firmware: PORT_LINK) is not built yet
    // (docs/remote.md): the links and relays are validated, and an array is never started with a
    // link it could not serve.
    const arrayEnd = topo.links.find((l) => topo.arrays.some((a) => a.name === l.a || a.name === l.b));
    if (arrayEnd) {
      throw new Error(`link ${arrayEnd.name}: an array's end of a link is not built yet (docs/remote.md, "Where each embodiment lives"); `
        + 'relays and links run in the network of harness/network.ts, tested with protocol endpoints (test/remote/)');
    }
    // Every array directory is ours before anything in it, or the trace, is opened (harness/lock.ts).
    const locks: DirectoryLock[] = [];
    try {
      for (const spec of topo.arrays) locks.push(DirectoryLock.acquire(spec.dir, spec.name, log));
    } catch (e) {
      for (const l of locks) l.release();
      throw e;
    }
    let trace: TraceWriter;
    try {
      trace = new TraceWriter(topo.trace);
    } catch (e) {
      for (const l of locks) l.release();
      throw e;
    }
    const arrays: ArrayController[] = [];
    const drivers: Driver[] = [];
    try {
      for (const spec of topo.arrays) {
        const a = await ArrayController.create(spec, {
          mode: topo.mode, seed: topo.seed, debug: options.debug, trace, metricsIntervalMs: topo.metricsIntervalMs, log, io: options.io,
        });
        arrays.push(a);
        const d = topo.mode === 'deterministic' ? new DeterministicDriver(a) : new RealtimeDriver(a);
        drivers.push(d);
        d.kick(); // destage what the NV image brought back
        // The disk IOP reads every medium's label before the volumes on it are ready: start
        // returns once it has (a lost medium is reported by its volumes, not waited for).
        await d.settle();
        if (a.mediaBecomingReady() > 0) throw new Error(`array ${a.name}: ${a.mediaBecomingReady()} medium label check(s) did not finish`);
      }
    } catch (e) {
      for (const a of arrays) { await a.closePorts(); await a.release(); }
      trace.close();
      for (const l of locks) l.release();
      throw e;
    }
    for (const a of arrays) running.set(a.name, a);
    return new Emulator(topo, arrays, drivers, trace, locks);
  }

  array(name?: string): ArrayController {
    const a = name === undefined ? this.arrays[0] : this.arrays.find((x) => x.name === name);
    if (!a) throw new Error(`no array ${JSON.stringify(name)} (arrays: ${this.arrays.map((x) => x.name).join(', ')})`);
    return a;
  }

  driver(name?: string): Driver { return this.drivers[this.arrays.indexOf(this.array(name))]; }

  /** An in-process session: `inproc://array/port`, or the first inproc port of an array. */
  connect(arrayName?: string, port?: string): CommandTransport {
    return this.array(arrayName).openSession(port);
  }

  /** Runs until every array is idle (deterministic: until no host waits). */
  async settle(): Promise<void> { await Promise.all(this.drivers.map((d) => d.settle())); }

  /** Deterministic: advances virtual time by ms, running the timers due. */
  async advance(ms: number): Promise<void> { await Promise.all(this.drivers.map((d) => d.advance(ms))); }

  /**
   * Flushes the cache of every array (the data reaches the media; the NV image stays valid).
   * Resolves with what each array could not destage (a dead or absent medium): that data stays
   * dirty in NV. Rejects when an array makes no progress for CONTROL_STALL_MS.
   */
  async flush(): Promise<ControlResult[]> { return Promise.all(this.arrays.map((a) => a.control(A.CTL_FLUSH))); }

  /**
   * graceful: ports closed, every dirty cache slot destaged, the NV image marked clean.
   * powerFail: everything stops at once; what was acknowledged is in the NV file and comes back
   * at the next start.
   */
  async stop(how: StopHow = 'graceful'): Promise<ControlResult[]> {
    if (this.stopped) return [];
    this.stopped = true;
    const results: ControlResult[] = [];
    const errors: Error[] = [];
    for (let i = 0; i < this.arrays.length; i++) {
      const a = this.arrays[i];
      const d = this.drivers[i];
      if (how === 'powerFail' || a.failed) {
        a.powerFail();
        d.stop();
        await a.closePorts();
      } else {
        await a.closePorts();
        // What cannot be destaged stays in NV and is reported; a stalled shutdown is an error, and
        // the array is released all the same (its NV image is then not marked clean).
        try {
          results.push(await a.control(A.CTL_SHUTDOWN));
          await d.settle();
        } catch (e) {
          errors.push(e as Error);
        }
        d.stop();
      }
      await a.release();
      if (running.get(a.name) === a) running.delete(a.name);
    }
    this.trace.close();
    for (const l of this.locks) l.release();
    if (errors.length > 0) throw new Error(errors.map((e) => e.message).join('; '));
    return results;
  }
}
