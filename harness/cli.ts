// sanbox: the emulator's command line.
//   sanbox run [topology.json] [--mode realtime|deterministic] [--seed n] [--debug]
//   sanbox validate <topology.json>
//   sanbox trace <trace.jsonl> --follow <cmdId> | --issuing <id> [--array <name>] [--pair <n>] [--json]
// While running, lines typed on stdin act on the arrays: "fault <array> <medium> read error at <lba>",
// "flush", "stats", "stop", "kill" (help lists them). Ctrl-C stops gracefully (cache flushed);
// a second Ctrl-C, or "kill", stops at once like a power loss (the NV memory keeps acknowledged writes).
import * as readline from 'readline';
import * as A from '../hal/abi';
import { Emulator, loadTopology, TopologyError, BootError, describeControl } from './index';
import type { Mode } from './topology';
import { packageVersion } from '../lib/paths';
import { readTrace, followWrite, describeStep, type FollowQuery } from './follow';

const USAGE = `usage: sanbox run [topology.json] [--mode realtime|deterministic] [--seed n] [--debug]
       sanbox validate <topology.json>
       sanbox trace <trace.jsonl> --follow <cmdId> | --issuing <id> [--array <name>] [--pair <n>] [--json]
       sanbox --version | --help`;

const TRACE_HELP = `usage: sanbox trace <trace.jsonl> --follow <cmdId> | --issuing <id> [--array <name>] [--pair <n>] [--json]

Follows one remote write through a run's trace (the topology's "trace" file): its send at the origin
array (by the command identifier of its remoteSend record, or its issuing ID), every relay's step,
and what the standby did with it (applied, rebuilt, held, reflected, dropped, discarded), in time
order. --array and --pair pick the origin when several match; --json prints the records.`;

const RUN_HELP = `usage: sanbox run [topology.json] [--mode realtime|deterministic] [--seed n] [--debug]

Boots the arrays of a topology (the embedded default when none is given: array0: framed ports
on tcp://127.0.0.1:7450 and 7451 for sanctl, an iSCSI target on 127.0.0.1:3260 and an NBD server on
127.0.0.1:10809, disks under ./var/array0) and serves their ports until Ctrl-C.

  --mode     realtime (default) or deterministic (virtual clock on one thread)
  --seed     seeds every PRNG of the run (deterministic mode: same seed, same trace)
  --debug    the debug firmware image (assertions on)

Ctrl-C stops gracefully (the cache is destaged first); a second Ctrl-C stops at once, like a power
loss. Type "help" for the console (stats, flush, fault, stop, kill). docs/topology.md has the file format.`;

const VALIDATE_HELP = `usage: sanbox validate <topology.json>

Checks a topology file and names the first bad field; starts nothing.`;

const CONSOLE_HELP = `commands:
  stats                                   counters of every array
  flush                                   destage every dirty cache slot
  fault <array> <medium> read error at <lba> [count <n>]
  fault <array> <medium> write error at <lba> [count <n>]
  fault <array> <medium> slow <factor> | dead | heal
  fault <array> nv error <ENOSPC|EIO|errno> [count <n>]
  fault <array> nv torn [bytes <n>] [after <n> writes]
  fault <array> nv power loss after <n> writes | heal
  link <name> down | up                   cut a link between nodes, or heal it (docs/remote.md)
  link status                             each link's counters; a link to another process: its connection
  partition <node> | heal <node>          cut every link of an array or relay, or heal them
  relay <name> kill                       the relay stops: what it holds is lost unless it has an nv file
  relay <name> restart                    the relay starts again (with an nv file, with what it stored)
  relay <name> flush                      a relay holding writes (forward later/threshold) forwards them now
  relay status                            what each relay holds and has forwarded
  power <array> off                       the array stops at once (a site lost): dirty data stays in NV
  stop                                    graceful stop (as Ctrl-C)
  kill                                    stop as a power loss: nothing is flushed`;

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === '--version' || cmd === 'version') { console.log(`sanbox ${packageVersion()}`); return 0; }
  if (cmd === '--help' || cmd === '-h' || cmd === 'help') { console.log(USAGE); return 0; }
  if (rest.includes('--help') || rest.includes('-h')) {
    if (cmd === 'run' || cmd === 'validate') { console.log(cmd === 'run' ? RUN_HELP : VALIDATE_HELP); return 0; }
    if (cmd === 'trace') { console.log(TRACE_HELP); return 0; }
  }
  if (cmd === 'trace') return traceCommand(rest);
  if (cmd === 'validate') {
    if (rest.length !== 1) { console.error(USAGE); return 2; }
    try {
      const t = loadTopology(rest[0]);
      console.log(`${rest[0]}: valid; ${t.arrays.length} array(s): ${t.arrays.map((a) => `${a.name} (${a.iops.length} IOPs, ${a.media.length} media, ${a.ports.length} ports)`).join(', ')}`);
      return 0;
    } catch (e) {
      console.error(`sanbox: ${(e as Error).message}`);
      return 1;
    }
  }
  if (cmd !== 'run') { console.error(cmd === undefined ? USAGE : `sanbox: unknown command ${JSON.stringify(cmd)}\n${USAGE}`); return 2; }
  let file: string | undefined;
  let mode: Mode | undefined;
  let seed: number | undefined;
  let debug = false;
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (a === '--mode') {
      const v = rest[++i];
      if (v !== 'realtime' && v !== 'deterministic') { console.error(`sanbox: --mode must be realtime or deterministic\n${USAGE}`); return 2; }
      mode = v;
    } else if (a === '--seed') {
      seed = Number(rest[++i]);
      if (!Number.isInteger(seed) || seed < 0) { console.error(`sanbox: --seed must be a non-negative integer\n${USAGE}`); return 2; }
    } else if (a === '--debug') debug = true;
    else if (a.startsWith('-') || file) { console.error(`sanbox: unexpected ${JSON.stringify(a)}\n${USAGE}`); return 2; }
    else file = a;
  }
  let emu: Emulator;
  try {
    emu = await Emulator.start(file, { mode, seed, debug, log: (l) => console.error(l) });
  } catch (e) {
    if (e instanceof TopologyError || e instanceof BootError) { console.error(`sanbox: ${e.message}`); return 1; }
    console.error(`sanbox: ${(e as Error).message}`);
    return 1;
  }
  const t = emu.topology;
  console.log(`sanbox: ${file ?? 'embedded default topology'}, ${t.mode} mode, seed ${t.seed}${t.trace ? `, trace ${t.trace}` : ''}`);
  for (const a of emu.arrays) {
    const recovered = a.bootInfo.nvLoadedBytes > 0 ? 'NV image loaded' : 'NV image new';
    console.log(`array ${a.name}: ${a.spec.iops.length} IOPs, ${a.spec.media.length} media, cache ${a.spec.cache.bytes >> 20} MiB, ${recovered} (${a.spec.nv.path})`);
    for (const p of a.targets) console.log(`  port ${p.port}: ${p.target}`);
  }
  for (const r of t.relays) console.log(`relay ${r.name}: ${r.cutThrough ? 'cut-through' : 'store and forward'}, buffer ${r.bufferBytes >> 20} MiB`);
  for (const l of t.links) {
    const tcp = l.tcp ? `, ${l.tcp.remote} in another process (tcp ${l.tcp.listen ? `listen ${emu.network.tcp.find((x) => x.spec === l)?.listening}` : `connect ${l.tcp.connect!.host}:${l.tcp.connect!.port}`})` : '';
    console.log(`link ${l.name}: ${l.a} - ${l.b}, ${l.km !== undefined ? `${l.km} km` : `${l.latencyNs / 1000} µs`}, ${l.bandwidthMbps} Mbit/s${l.loss ? `, loss ${l.loss}` : ''}${tcp}`);
  }
  console.log('serving; Ctrl-C stops (type "help" for the console)');

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async (how: 'graceful' | 'powerFail') => {
      if (stopping && how === 'graceful') return;
      stopping = true;
      console.error(how === 'graceful' ? 'sanbox: stopping: flushing the cache' : 'sanbox: stopping at once (power loss)');
      let code = 0;
      try {
        const results = await emu.stop(how);
        const left = results.reduce((n, r) => n + r.dirtyLeft, 0);
        for (const r of results) if (r.dirtyLeft > 0 || r.nvErrno !== null) console.error(`sanbox: ${describeControl(r)}`);
        console.error(how === 'powerFail' ? 'sanbox: stopped as a power loss (dirty data stays in NV)'
          : left > 0 ? `sanbox: stopped with ${left} dirty slot(s) left in NV` : 'sanbox: stopped');
        if (left > 0) code = 1;
      } catch (e) {
        console.error(`sanbox: stopped without a clean shutdown: ${(e as Error).message}`);
        code = 1;
      }
      rl?.close();
      resolve(code);
    };
    let interrupts = 0;
    process.on('SIGINT', () => { interrupts++; void stop(interrupts > 1 ? 'powerFail' : 'graceful'); });
    process.on('SIGTERM', () => void stop('graceful'));
    const rl = process.stdin.isTTY || process.env.SANBOX_CONSOLE ? readline.createInterface({ input: process.stdin }) : undefined;
    rl?.on('line', (line) => {
      const words = line.trim().split(/\s+/);
      try {
        switch (words[0]) {
          case '': break;
          case 'help': console.log(CONSOLE_HELP); break;
          case 'stop': void stop('graceful'); break;
          case 'kill': void stop('powerFail'); break;
          case 'flush':
            void emu.flush().then((rs) => { for (const r of rs) console.log(describeControl(r)); },
              (e: Error) => console.error(`flush: ${e.message}`));
            break;
          case 'stats':
            for (const a of emu.arrays) {
              const s = a.stats();
              console.log(`${a.name}: commands ${s[A.STAT_COMMANDS]}, reads ${s[A.STAT_READS]} (hits ${s[A.STAT_READ_HITS]}, misses ${s[A.STAT_READ_MISSES]}), writes ${s[A.STAT_WRITES]}, errors ${s[A.STAT_ERRORS]}, stages ${s[A.STAT_STAGES]}, destages ${s[A.STAT_DESTAGES]}, NV writes ${s[A.STAT_NV_WRITES]}`);
            }
            break;
          case 'link':
            if (words[1] !== 'status') { emu.injectNetwork(line.trim()); console.log(`network fault set: ${line.trim()}`); break; }
            for (const l of emu.network.linkStatus()) {
              const c = l.tcp;
              console.log(`${l.link}: ${l.a} - ${l.b}, ${l.up ? 'up' : 'down'}, sent ${l.sent}, delivered ${l.delivered}, lost ${l.lost}, congested ${l.congested}, cut ${l.cut}, overruns ${l.overruns}`
                + (c ? `; tcp ${c.state} ${c.address}, ${c.connects} connects, ${c.refused} refused, ${c.dropped} dropped, ${c.framesIn} frames in, ${c.framesOut} out, ${c.badPackets} bad packets` : ''));
            }
            break;
          case 'partition': case 'heal':
            emu.injectNetwork(line.trim());
            console.log(`network fault set: ${line.trim()}`);
            break;
          case 'relay':
            if (words[1] === 'status') {
              for (const r of emu.network.relayStatus()) console.log(`${r.relay}: ${r.mode}${r.nv ? `, NV, forward ${r.forward}, ${r.held} stored waiting` : ''}, ${r.active} held, buffer ${r.bufferUsedBytes} of ${r.bufferBytes} bytes, ${r.jobs} taken, ${r.forwarded} forwarded, ${r.failed} failed, ${r.retries} retries`);
            } else {
              emu.injectNetwork(line.trim());
              console.log(`network fault set: ${line.trim()}`);
            }
            break;
          case 'power':
            if (words[2] !== 'off') throw new Error('expected "power <array> off"');
            emu.array(words[1]).powerFail(`power of array ${words[1]} switched off from the console`);
            console.log(`array ${words[1]}: power off (its acknowledged writes are in its NV file)`);
            break;
          case 'fault': {
            const f = emu.array(words[1]).inject(words.slice(2).join(' '));
            console.log(f ? `fault set: ${JSON.stringify(f)}` : 'faults cleared');
            break;
          }
          default: console.log(`unknown command ${JSON.stringify(words[0])}; ${CONSOLE_HELP}`);
        }
      } catch (e) {
        console.log(`error: ${(e as Error).message}`);
      }
    });
  });
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => process.exit(code), (e) => { console.error(e); process.exit(1); });
}

/** sanbox trace: one write's path through a run's trace (harness/follow.ts). */
function traceCommand(rest: string[]): number {
  const q: FollowQuery = {};
  let file: string | undefined;
  let json = false;
  const num = (flag: string, v: string | undefined): number | undefined => {
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n) || n < 0) { console.error(`sanbox trace: ${flag} needs a non-negative integer\n${TRACE_HELP}`); return undefined; }
    return n;
  };
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (a === '--follow' || a === '--issuing' || a === '--pair') {
      const n = num(a, rest[++i]);
      if (n === undefined) return 2;
      if (a === '--follow') q.cmdId = n; else if (a === '--issuing') q.issuingId = n; else q.pair = n;
    } else if (a === '--array') {
      if (rest[i + 1] === undefined) { console.error(`sanbox trace: --array needs a name\n${TRACE_HELP}`); return 2; }
      q.array = rest[++i];
    } else if (a === '--json') json = true;
    else if (a.startsWith('-') || file) { console.error(`sanbox trace: unexpected ${JSON.stringify(a)}\n${TRACE_HELP}`); return 2; }
    else file = a;
  }
  if (!file || (q.cmdId === undefined && q.issuingId === undefined)) { console.error(TRACE_HELP); return 2; }
  try {
    const r = followWrite(readTrace(file), q);
    if (json) { console.log(JSON.stringify(r, null, 2)); return 0; }
    console.log(`write of array ${r.origin.array} (node ${r.origin.node}), pair ${r.origin.pair}, issuing ID ${r.origin.issuingId}:`);
    for (const step of r.steps) console.log(describeStep(step));
    return 0;
  } catch (e) {
    console.error(`sanbox trace: ${(e as Error).message}`);
    return 1;
  }
}
