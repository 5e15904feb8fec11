// The emulator: a topology's arrays, each with its driver, and the run's trace. This is the API
// the CLI (`sanbox run`), the tests and the benchmarks use.
import * as A from '../hal/abi';
import { ArrayController, type ControlResult } from './array';
import { Driver, RealtimeDriver, DeterministicDriver } from './driver';
import { TraceWriter } from './trace';
import { World } from './world';
import { Network } from './network';
import { DirectoryLock } from './lock';
import { loadTopology, parseTopology, checkTcpMode, Topology, Mode } from './topology';
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
    /** Linked topologies: arrays, relays and links on one clock. */
    readonly world?: World,
  ) {}

  /** The relays and links (linked topologies only). */
  get network(): Network {
    if (!this.world) throw new Error('this topology has no links: no relays or links to address');
    return this.world.network;
  }

  /**
   * A fault of the network by name (harness/network.ts): "link <name> down|up", "partition <node>",
   * "heal <node>", "relay <name> kill" (the relay stops: what it holds is lost).
   */
  injectNetwork(text: string): void { this.network.inject(text, this.world!.now()); this.world!.kick(); }

  /** Boots every array of a topology: a file, a topology document (as in a file), or the embedded default. */
  static async start(topology?: string | object, options: StartOptions = {}): Promise<Emulator> {
    let topo: Topology = typeof topology === 'string' || topology === undefined ? loadTopology(topology)
      : parseTopology(topology, options.baseDir ?? process.cwd());
    topo = { ...topo, mode: options.mode ?? topo.mode, seed: options.seed ?? topo.seed };
    if (topo.mode === 'deterministic') checkTcpMode(topo.links); // --mode may have changed it
    const log = options.log ?? (() => undefined);
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
    let drivers: Driver[] = [];
    let world: World | undefined;
    try {
      for (const spec of topo.arrays) {
        const a = await ArrayController.create(spec, {
          mode: topo.mode, seed: topo.seed, debug: options.debug, trace, metricsIntervalMs: topo.metricsIntervalMs, log, io: options.io,
        });
        arrays.push(a);
        if (topo.links.length > 0) continue; // linked nodes share one clock: the World below
        const d = topo.mode === 'deterministic' ? new DeterministicDriver(a) : new RealtimeDriver(a);
        drivers.push(d);
        d.kick(); // destage what the NV image brought back
        // The disk IOP reads every medium's label before the volumes on it are ready: start
        // returns once it has (a lost medium is reported by its volumes, not waited for).
        await d.settle();
        if (a.mediaBecomingReady() > 0) throw new Error(`array ${a.name}: ${a.mediaBecomingReady()} medium label check(s) did not finish`);
      }
      if (topo.links.length > 0) {
        // Arrays, relays and links on one clock (harness/world.ts, docs/remote.md).
        const names = [...(topo.arrayNodes ?? topo.arrays.map((a) => a.name)), ...topo.relays.map((r) => r.name)];
        const network = new Network(names, topo.links, topo.relays, topo.seed, log, options.debug ?? false);
        world = new World(arrays, network, topo.mode === 'deterministic');
        // The relays' own records go into the run's trace with the arrays' (docs/remote.md, "Trace").
        if (trace.enabled) for (const r of network.relays) r.traceTo = (record) => trace.write(record);
        await network.start();
        drivers = world.drivers;
        await world.settle();
        for (const a of arrays) if (a.mediaBecomingReady() > 0) throw new Error(`array ${a.name}: ${a.mediaBecomingReady()} medium label check(s) did not finish`);
      }
    } catch (e) {
      world?.stop();
      for (const a of arrays) { await a.closePorts(); await a.release(); }
      trace.close();
      for (const l of locks) l.release();
      throw e;
    }
    for (const a of arrays) running.set(a.name, a);
    return new Emulator(topo, arrays, drivers, trace, locks, world);
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
    this.world?.stop();
    this.trace.close();
    for (const l of this.locks) l.release();
    if (errors.length > 0) throw new Error(errors.map((e) => e.message).join('; '));
    return results;
  }
}
