// sanctl: the initiator on the command line. Every subcommand is a call of the client library
// (host/client.ts); run() is the whole program without a process, so tests drive it directly.
//
// Manners: human output by default, --json puts one JSON document on stdout and nothing else;
// progress on stderr and only on a terminal; errors to stderr in words (the sense decoded).
// Exit codes: 0 ok, 1 the command failed (SCSI status, sense, file), 2 usage, 3 connection/transport.

import * as fs from 'fs';
import * as path from 'path';
import { parseArgs } from 'util';
import type { Readable, Writable } from 'stream';
import { performance } from 'perf_hooks';
import { CommandTransport, TransportError } from '../lib/transport';
import * as scsi from '../lib/scsi';
import { REMOTE_MODES, type RemoteStatus, type RemoteChangeName, type RemoteModeName, type RoutePolicyName } from '../lib/remote';
import { parseRedundancy } from '../lib/remote';
import { restartPoint, restartPointAll } from './failover';
import { ScsiError } from '../lib/scsi';
import { ScsiClient } from './client';
import { TapeLibrary, CHANGER_DEFAULT_LUN, writeLabelledSet, readLabelledSet } from './tape';
import { backupVolume, restoreVolume } from './backup';
import { connect as defaultConnect, DEFAULT_TARGET } from './connect';
import { packageVersion } from '../lib/paths';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
export const EXIT_TRANSPORT = 3;

export interface SanctlIo {
  stdout: Writable;
  stderr: Writable & { isTTY?: boolean };
  stdin: Readable;
  env: Record<string, string | undefined>;
  /** Opens the target (default: host/connect's connect). */
  connect?: (target: string) => Promise<CommandTransport>;
  /** A monotonic clock in milliseconds and a wait, for stats' interval (default: the process's). */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export const USAGE = `usage: sanctl [--target URL] [--json] <command>

  ping [--count N]                      PING frames (TEST UNIT READY where the transport has no PING)
  inquiry [--lun N]                     vendor, product, serial and device identifiers
  luns                                  the LUNs of this port, with their volumes
  capacity <volume|lun>                 blocks and block size
  volume create <name> --size SIZE [--block-size 512|4096] [--media m0,m1] [--stripe | --thin]
                [--port P] [--lun N] [--no-map]
                                        create a volume and map it to the lowest LUN free on every
                                        port (framed, iSCSI, NBD: export <name>); --port P: P only
  volume list                           volumes, their mappings and dirty cache
  volume status <name>                  one volume: state, space allocated on the media (a thin
                                        volume's chunks taken by writes), free space on its media
  volume delete <name> [--force]        delete (--force: unmap it everywhere first)
  volume map <name> --lun N [--port P|all]
  volume unmap <name> --lun N [--port P|all]
  volume access <name> [<initiator|*> <rw|ro|none|remove>]
                                        the volume's access list, or set an initiator's access (an
                                        iSCSI name, nbd:<address>, framed:<address>); * sets it for
                                        initiators the list does not name
  media                                 the array's media
  ports                                 the array's front-end ports
  write <volume|lun> <file|-> [--offset N] [--fua]
                                        write a file (or stdin) at byte N of the volume (default 0)
  read <volume|lun> <file|-> [--offset N] [--bytes N]
                                        read N bytes (default: to the end) from byte N (default 0);
                                        the file is replaced only when every byte has arrived
  pair create <source> <target> [--track-size SIZE] [--wait]
                                        pair two volumes (duplex pending; the creation copy starts)
  pair split <volume> [--wait]          split at once (source split; target split pending until copied)
  pair resync <volume> [--wait]         copy the tracks changed on either side since the split
  pair reverse <volume> [--wait]        copy them back, target -> source
  pair delete <volume>                  dissolve the pair (from any state); both volumes stay
  pair status                           states, pending and copied tracks, time left
  remote create <volume> <array>:<volume> [--via RELAY[,RELAY...]] [--policy round-robin|least-loaded|random|stripe|all] [--mode mirror|backup|delayed|async|snapshot] [--group G] [--timeout MS] [--retries N] [--redundancy N+m] [--wait]
                                        pair a volume with one of another array (docs/remote.md); the
                                        initial copy runs; --wait returns once the pair is duplex
  remote status                         remote pairs: role, state and why, issuing ID, copy progress
  remote suspend <volume>               writes stay local until resume
  remote resume <volume> [--wait]       copy the volume again and return to pair
  remote failover <volume>              on the secondary: its volume becomes the hosts' (read-write)
  remote delete <volume>                dissolve the remote pair (the secondary is told if it can be)
  restart-point <volume> | --all        a restart enabling point of a delayed pair (every one with --all):
                                        done when the standby has every write before it (docs/remote.md)
  relay status                          the relays next to this array: buffer, commands, forwarded
                                        (--wait: until the copy is done, with a progress bar)
  stats [--interval S]                  rates over S seconds (default 1): IOPS, MB/s, latency, cache
                                        hits; the cache and the counters (--interval 0: no rates)
  tape list [--library-lun N]           the library's elements: slots, drives, import/export, barcodes
  tape move <from> <to>                 move a cartridge (element addresses, or a barcode as <from>)
  tape load <barcode>                   into a free drive, threaded (the drive is not kept reserved)
  tape unload <barcode>                 out of its drive, back to the slot it came from
  tape write <barcode> <file>           a labelled tape (ECMA-13: VOL1, HDR1/HDR2, data, EOF1/EOF2)
                                        holding the file, on a free drive; the cartridge goes back after
  tape read <barcode> <file> [--file N] file N (default 1) of the labelled tape, checked against its labels
  tape access <lun> [<initiator|*> <rw|ro|none|remove>]
                                        the access list of the tape device at <lun> (the changer or a
                                        drive, as luns shows them), or set an initiator's access, as
                                        volume access does
  backup <volume> --tape <barcode>      server-free backup by EXTENDED COPY (docs/xcopy.md): a labelled tape
         [--range LBA+COUNT]            with the volume information first; a volume in a duplex pair is
         [--embodiment 1|2|3|4]         split and its target copied (document 001's embodiments: PAIR SPLIT,
         [--resync]                     then 1 priority copy of the range, 2 wait for the split, 3 merge from
                                        the source; 4 split and backup in one command, the default; --resync after)
  restore <barcode> <volume>            the tape's blocks back into the volume at the LBAs they came from (by EXTENDED COPY), labels checked

  --target  tcp://host:port, serial:///dev/tty...[?baud=N], inproc://...
            (default: $SANBOX_TARGET, else ${DEFAULT_TARGET})
  --json    machine-readable output on stdout
  --version, --help
  SIZE and N take KiB, MiB, GiB, TiB (and K, M, G, T) or kB, MB, GB, TB suffixes; --offset is a
  multiple of the volume's block size; --length is another name for --bytes. A volume name is not
  all digits (42 means LUN 42).
  Exit codes: 0 ok, 1 command failed, 2 usage error, 3 connection or transport failure.`;

class UsageError extends Error {}

const OPTIONS = {
  target: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
  count: { type: 'string' },
  lun: { type: 'string' },
  size: { type: 'string' },
  'block-size': { type: 'string' },
  media: { type: 'string' },
  stripe: { type: 'boolean' },
  thin: { type: 'boolean' },
  port: { type: 'string' },
  'no-map': { type: 'boolean' },
  force: { type: 'boolean' },
  fua: { type: 'boolean' },
  bytes: { type: 'string' },
  length: { type: 'string' },
  offset: { type: 'string' },
  interval: { type: 'string' },
  wait: { type: 'boolean' },
  'track-size': { type: 'string' },
  'library-lun': { type: 'string' },
  file: { type: 'string' },
  tape: { type: 'string' },
  range: { type: 'string' },
  embodiment: { type: 'string' },
  resync: { type: 'boolean' },
  via: { type: 'string' },
  redundancy: { type: 'string' },
  policy: { type: 'string' },
  mode: { type: 'string' },
  group: { type: 'string' },
  timeout: { type: 'string' },
  retries: { type: 'string' },
  all: { type: 'boolean' },
} as const;

type Options = { [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]['type'] extends 'string' ? string : boolean };

interface Context {
  client: ScsiClient;
  transport: CommandTransport;
  io: SanctlIo;
  options: Options;
  /** Prints the result: `data` as JSON under --json, else `human` lines. */
  out(data: unknown, human: string | string[]): void;
}

interface Command {
  args: string[];
  /** How many of args may be given, when not all of them must be. */
  counts?: number[];
  options: (keyof typeof OPTIONS)[];
  /** Checks the arguments before anything is opened (throws UsageError). */
  check?(options: Options, args: string[]): void;
  run(ctx: Context, args: string[]): Promise<void>;
}

const COMMANDS: Record<string, Command> = {
  ping: { args: [], options: ['count'], check: (o) => count(o), run: ping },
  inquiry: { args: [], options: ['lun'], check: (o) => inquiryLun(o), run: inquiry },
  luns: { args: [], options: [], run: luns },
  capacity: { args: ['volume|lun'], options: [], run: capacity },
  'volume create': { args: ['name'], options: ['size', 'block-size', 'media', 'stripe', 'thin', 'port', 'lun', 'no-map'], check: createChecks, run: volumeCreate },
  'volume list': { args: [], options: [], run: volumeList },
  'volume status': { args: ['name'], options: [], run: volumeStatus },
  'volume delete': { args: ['name'], options: ['force'], run: volumeDelete },
  'volume map': { args: ['name'], options: ['port', 'lun'], check: mapChecks, run: (ctx, a) => volumeMap(ctx, a, true) },
  'volume unmap': { args: ['name'], options: ['port', 'lun'], check: mapChecks, run: (ctx, a) => volumeMap(ctx, a, false) },
  'volume access': { args: ['name', 'initiator|*', 'rw|ro|none|remove'], counts: [1, 3], check: (o, a) => accessChecks(o, a, 'volume access'), options: [], run: volumeAccess },
  media: { args: [], options: [], run: media },
  ports: { args: [], options: [], run: ports },
  write: { args: ['volume|lun', 'file|-'], options: ['fua', 'offset'], check: (o) => offsetOption(o), run: write },
  read: { args: ['volume|lun', 'file|-'], options: ['bytes', 'length', 'offset'], check: readChecks, run: read },
  stats: { args: [], options: ['interval'], check: (o) => intervalOption(o), run: stats },
  'pair create': { args: ['source', 'target'], options: ['track-size', 'wait'], check: (o) => trackSize(o), run: (ctx, a) => pairChange(ctx, 'create', a) },
  'pair split': { args: ['volume'], options: ['wait'], run: (ctx, a) => pairChange(ctx, 'split', a) },
  'pair resync': { args: ['volume'], options: ['wait'], run: (ctx, a) => pairChange(ctx, 'resync', a) },
  'pair reverse': { args: ['volume'], options: ['wait'], run: (ctx, a) => pairChange(ctx, 'reverse', a) },
  'pair delete': { args: ['volume'], options: [], run: (ctx, a) => pairChange(ctx, 'delete', a) },
  'pair status': { args: [], options: [], run: pairStatus },
  'remote create': { args: ['volume', 'array:volume'], options: ['via', 'policy', 'mode', 'group', 'timeout', 'retries', 'redundancy', 'wait'], check: remoteChecks, run: remoteCreate },
  'remote status': { args: [], options: [], run: remoteStatus },
  'remote suspend': { args: ['volume'], options: [], run: (ctx, a) => remoteChange(ctx, 'suspend', a) },
  'remote resume': { args: ['volume'], options: ['wait'], run: (ctx, a) => remoteChange(ctx, 'resume', a) },
  'remote failover': { args: ['volume'], options: [], run: (ctx, a) => remoteChange(ctx, 'failover', a) },
  'remote delete': { args: ['volume'], options: [], run: (ctx, a) => remoteChange(ctx, 'delete', a) },
  'restart-point': { args: ['volume'], counts: [0, 1], options: ['all'], check: restartPointChecks, run: restartPointCommand },
  'relay status': { args: [], options: [], run: relayStatus },
  'tape list': { args: [], options: ['library-lun'], run: tapeList },
  'tape move': { args: ['from', 'to'], options: ['library-lun'], run: tapeMove },
  'tape load': { args: ['barcode'], options: ['library-lun'], run: tapeLoad },
  'tape unload': { args: ['barcode'], options: ['library-lun'], run: tapeUnload },
  'tape write': { args: ['barcode', 'file'], options: ['library-lun'], run: tapeWrite },
  'tape read': { args: ['barcode', 'file'], options: ['library-lun', 'file'], run: tapeRead },
  'tape access': { args: ['lun', 'initiator|*', 'rw|ro|none|remove'], counts: [1, 3], check: (o, a) => accessChecks(o, a, 'tape access'), options: [], run: tapeAccess },
  backup: { args: ['volume'], options: ['tape', 'range', 'embodiment', 'resync', 'library-lun'], check: backupChecks, run: backup },
  restore: { args: ['barcode', 'volume'], options: ['library-lun'], run: restore },
};

// ---- Remote pairs (docs/remote.md) ---------------------------------------------------------------------

function remoteChecks(o: Options, args: string[]): void {
  if (!/^[^:]+:[^:]+$/.test(args[1] ?? '')) throw new UsageError('the peer is <array>:<volume>, e.g. standby:vol0');
  if (o.mode !== undefined && !(REMOTE_MODES as readonly string[]).includes(o.mode) || o.mode === 'none') throw new UsageError(`--mode is ${REMOTE_MODES.slice(1).join(', ')}`);
  if (o.policy !== undefined && !['round-robin', 'least-loaded', 'random', 'stripe', 'all'].includes(o.policy)) throw new UsageError('--policy is round-robin, least-loaded, random, stripe or all');
  if (o.policy !== undefined && o.via === undefined) throw new UsageError('--policy needs relays: --via r1,r2,...');
  if (o.group !== undefined) {
    parseInteger(o.group, '--group', 1, 255);
    if (o.mode !== 'async') throw new UsageError('--group needs --mode async (a consistency group orders asynchronous copies)');
  }
  if (o.mode === 'async' && o.redundancy !== undefined) throw new UsageError('--mode async sends its journal without redundancy: not with --redundancy');
  if (o.mode === 'async' && o.via !== undefined && o.via.includes(',')) throw new UsageError('--mode async sends its journal through one relay at most: not with several in --via');
  if (o.timeout !== undefined) parseInteger(o.timeout, '--timeout', 1, 600_000);
  if (o.retries !== undefined) parseInteger(o.retries, '--retries', 1, 255);
  if (o.redundancy !== undefined) {
    try { parseRedundancy(String(o.redundancy)); } catch (e) { throw new UsageError(`--redundancy: ${(e as Error).message}`); }
    if (o.via !== undefined) throw new UsageError('--redundancy sends parts over the direct links to the peer: not with --via');
  }
}

/** Waits (polling) until the pair of `volume` is duplex; fails when it suspends or stops copying for REMOTE_STALL_MS. */
async function remoteWait(ctx: Context, volume: number): Promise<RemoteStatus> {
  const now = ctx.io.now ?? (() => performance.now());
  const sleep = ctx.io.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let st = await ctx.client.remoteOf(volume);
  let progress = st.copiedBytes;
  let since = now();
  while (st.state !== 'pair') {
    if (st.state === 'suspended') throw new Error(`the remote pair of volume ${volume} was suspended (${st.reason})`);
    if (st.copiedBytes !== progress) { progress = st.copiedBytes; since = now(); }
    if (now() - since > REMOTE_STALL_MS) throw new Error(`waited ${REMOTE_STALL_MS / 1000} s for the remote pair of volume ${volume}: ${formatBytes(st.copyBytes - st.copiedBytes)} still to copy, none copied meanwhile`);
    await sleep(100);
    st = await ctx.client.remoteOf(volume);
  }
  return st;
}
const REMOTE_STALL_MS = 60_000;

async function remoteCreate(ctx: Context, args: string[]): Promise<void> {
  const vol = await volumeByName(ctx.client, args[0]);
  const [to, toVolume] = args[1].split(':');
  let st = await ctx.client.remoteCreate({
    volume: vol.number, to, toVolume, via: ctx.options.via, policy: ctx.options.policy as RoutePolicyName | undefined, mode: ctx.options.mode as RemoteModeName | undefined,
    group: ctx.options.group === undefined ? undefined : Number(ctx.options.group),
    timeoutMs: ctx.options.timeout === undefined ? undefined : Number(ctx.options.timeout),
    retries: ctx.options.retries === undefined ? undefined : Number(ctx.options.retries),
    redundancy: ctx.options.redundancy === undefined ? undefined : parseRedundancy(String(ctx.options.redundancy)),
  });
  if (ctx.options.wait) st = await remoteWait(ctx, vol.number);
  ctx.out(st, remoteLine(st, vol.name));
}

async function remoteChange(ctx: Context, op: RemoteChangeName, args: string[]): Promise<void> {
  const vol = await volumeByName(ctx.client, args[0]);
  await ctx.client.remoteChange(vol.number, op);
  if (op === 'delete') { ctx.out({ deleted: vol.name }, `remote pair of ${vol.name} deleted`); return; }
  let st = await ctx.client.remoteOf(vol.number);
  if (op === 'resume' && ctx.options.wait) st = await remoteWait(ctx, vol.number);
  ctx.out(st, remoteLine(st, vol.name));
}

function restartPointChecks(o: Options, args: string[]): void {
  if ((args.length === 1) === Boolean(o.all)) throw new UsageError('restart-point takes a volume or --all (not both)');
}

/** S440/S441: the restart enabling point; answered once the standby has reflected every write before it. */
async function restartPointCommand(ctx: Context, args: string[]): Promise<void> {
  if (ctx.options.all) {
    const volumes = await restartPointAll(ctx.client);
    ctx.out({ restartPoint: volumes }, volumes.length ? `restart point: volumes ${volumes.join(', ')}` : 'restart point: no delayed pair in `pair` on this array');
    return;
  }
  const vol = await volumeByName(ctx.client, args[0]);
  await restartPoint(ctx.client, vol.number);
  const st = await ctx.client.remoteOf(vol.number);
  ctx.out({ restartPoint: [vol.number], pair: st }, `restart point of ${vol.name}: issuing ID ${st.issuingId}`);
}

function remoteLine(p: RemoteStatus, name?: string): string {
  const why = p.state === 'suspended' ? ` (${p.reason}${p.failedCommand ? `, command ${p.failedCommand}` : ''})` : '';
  const copy = p.state === 'copy' ? `, copied ${formatBytes(p.copiedBytes)} of ${formatBytes(p.copyBytes)}` : '';
  const group = p.group ? ` group ${p.group}` : '';
  const journal = p.mode === 'async' && p.role === 'primary' ? `, ${p.journalEntries} journaled` : '';
  const diff = p.role === 'primary' && p.diffTracks > 0 ? `, ${p.diffTracks} tracks of ${formatBytes(p.trackBytes)} to copy at resume` : '';
  // Over several relays (embodiment 4) every relay of the route, the first hop first, and the policy.
  const via = p.routeNodes.length > 1 ? ` via nodes ${p.routeNodes.join(', ')} (${p.routePolicy})` : p.viaRelay ? ` via node ${p.firstHopNode}` : '';
  return `${name ?? `#${p.volume}`} ${p.role} -> node ${p.peerNode}:${p.peerVolume}${via} ${p.state}${why}${copy}, `
    + `issuing ID ${p.issuingId}, ${p.inFlight} in flight${journal}${diff}, ${p.writes} writes (${formatBytes(p.bytes)}), ${p.mode}${group}`;
}

async function remoteStatus(ctx: Context): Promise<void> {
  const pairs = await ctx.client.remoteStatus();
  ctx.out({ pairs }, pairs.length === 0 ? 'no remote pairs' : pairs.map((p) => remoteLine(p)));
}

async function relayStatus(ctx: Context): Promise<void> {
  const relays = await ctx.client.relayStatus();
  ctx.out({ relays }, relays.length === 0 ? 'no relay next to this array' : relays.map((r) =>
    `${r.relay} (node ${r.node}, ${r.mode}${r.nv ? `, NV, forward ${r.forward}` : ''}, ${r.state}): ${r.active} held${r.nv ? ` (${r.held} stored waiting)` : ''}, buffer ${formatBytes(r.bufferUsedBytes)} of ${formatBytes(r.bufferBytes)}, `
    + `${r.jobs} taken, ${r.forwarded} forwarded, ${r.failed} failed, ${r.retries} retries, ${r.duplicates} duplicates, ${r.noBuffer} without buffer, ${r.badPackets} bad packets`));
}

// ---- Volume pairs ---------------------------------------------------------------------------------------

/** --track-size in KiB for PAIR CREATE (0: the array's default, 64 KiB). */
function trackSize(o: Options): number {
  if (o['track-size'] === undefined) return 0;
  const bytes = parseSize(o['track-size'], '--track-size');
  if (bytes % 1024 !== 0) throw new UsageError('--track-size is a whole number of KiB (64KiB to 1MiB, a power of two)');
  return bytes / 1024;
}

type PairVerb = 'create' | 'split' | 'resync' | 'reverse' | 'delete';
/** Where --wait stops: the state each change settles in. */
const SETTLED: Record<PairVerb, scsi.PairStateName> = { create: 'duplex', split: 'split', resync: 'duplex', reverse: 'duplex', delete: 'simplex' };
/** --wait gives up when the pending tracks have not gone down for this long. */
const PAIR_STALL_MS = 60_000;

async function pairChange(ctx: Context, verb: PairVerb, args: string[]): Promise<void> {
  const c = ctx.client;
  const vol = await volumeByName(c, args[0]);
  if (verb === 'create') await c.pairCreate(vol.number, (await volumeByName(c, args[1])).number, { trackKiB: trackSize(ctx.options) });
  else if (verb === 'split') await c.pairSplit(vol.number);
  else if (verb === 'resync') await c.pairResync(vol.number);
  else if (verb === 'reverse') await c.pairReverse(vol.number);
  else { await c.pairDelete(vol.number); ctx.out({ deleted: vol.name }, `pair of ${vol.name} deleted`); return; }
  let st = await c.pairOf(vol.number);
  if (ctx.options.wait) st = await pairWait(ctx, vol.number, SETTLED[verb]);
  ctx.out(pairJson(st), pairLine(st));
}

/** Polls the pair until it settles in `state`, with a progress bar of the copied tracks; fails when it stalls or suspends. */
async function pairWait(ctx: Context, volume: number, state: scsi.PairStateName): Promise<scsi.PairStatus> {
  const now = ctx.io.now ?? (() => performance.now());
  const sleep = ctx.io.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let st = await ctx.client.pairOf(volume);
  const total = Math.max(st.pendingTracks, 1);
  const bar = progressBar(ctx.io, 'copy', total * st.trackBytes);
  let best = st.pendingTracks;
  let since = now();
  try {
    while (st.state !== state) {
      if (st.state === 'suspended') throw new Error(`the pair of volume ${volume} was suspended (${st.suspendReason})`);
      if (now() - since > PAIR_STALL_MS) throw new Error(`waited ${PAIR_STALL_MS / 1000} s for the pair of volume ${volume} to reach ${state}: ${st.pendingTracks} tracks still pending, none copied meanwhile`);
      await sleep(100);
      st = await ctx.client.pairOf(volume);
      if (st.pendingTracks < best) { best = st.pendingTracks; since = now(); }
      bar.update(Math.max(total - st.pendingTracks, 0) * st.trackBytes);
    }
  } finally {
    bar.end();
  }
  return st;
}

function pairJson(p: scsi.PairStatus): object { return { ...p }; }

function pairLine(p: scsi.PairStatus): string {
  const eta = p.pendingTracks === 0 ? '' : p.estimateMs === undefined ? ', time left unknown' : `, about ${(p.estimateMs / 1000).toFixed(1)} s left`;
  const ro = p.targetReadOnly ? ', target read-only' : '';
  const why = p.state === 'suspended' ? ` (${p.suspendReason})` : '';
  return `pair ${p.pair}: #${p.source} -> #${p.target} ${p.state}${why} (source ${p.sourceState}, target ${p.targetState}), ` +
    `${p.pendingTracks} of ${p.tracks} tracks pending, ${p.copiedTracks} copied (${formatBytes(p.copiedBytes)})${eta}${ro}`;
}

async function pairStatus(ctx: Context): Promise<void> {
  const pairs = await ctx.client.pairStatus();
  ctx.out({ pairs: pairs.map(pairJson) }, pairs.length === 0 ? 'no pairs' : pairs.map(pairLine));
}

const GLOBAL_OPTIONS = ['target', 'json', 'help', 'version'];

/** sanctl without a process: returns the exit code. */
export async function run(argv: string[], io: SanctlIo): Promise<number> {
  let parsed: { command: Command; args: string[]; options: Options };
  try {
    parsed = parse(argv);
  } catch (e) {
    if (e instanceof HelpRequested) { io.stdout.write(`${USAGE}\n`); return EXIT_OK; }
    if (e instanceof VersionRequested) { io.stdout.write(`sanctl ${packageVersion()}\n`); return EXIT_OK; }
    io.stderr.write(`sanctl: ${(e as Error).message}\n${USAGE}\n`);
    return EXIT_USAGE;
  }
  const { command, args, options } = parsed;
  const target = options.target ?? io.env.SANBOX_TARGET ?? DEFAULT_TARGET;
  let transport: CommandTransport | undefined;
  try {
    transport = await (io.connect ?? defaultConnect)(target);
    const ctx: Context = { client: new ScsiClient(transport), transport, io, options, out: (data, human) => print(io, options, data, human) };
    await command.run(ctx, args);
    return EXIT_OK;
  } catch (e) {
    return failure(io, options, e);
  } finally {
    await transport?.close().catch(() => undefined);
  }
}

class HelpRequested extends Error {}
class VersionRequested extends Error {}

function parse(argv: string[]): { command: Command; args: string[]; options: Options } {
  let values: Options;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true }) as { values: Options; positionals: string[] });
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\. To specify a positional.*$/s, ''));
  }
  if (values.help) throw new HelpRequested();
  if (values.version) throw new VersionRequested();
  if (positionals.length === 0) throw new UsageError('no command given');
  const name = COMMANDS[positionals[0]] ? positionals[0] : positionals.slice(0, 2).join(' ');
  const command = COMMANDS[name];
  if (!command) throw new UsageError(`unknown command "${positionals.slice(0, 2).join(' ')}"`);
  const args = positionals.slice(name.split(' ').length);
  if (!(command.counts ?? [command.args.length]).includes(args.length)) {
    throw new UsageError(`${name} takes ${command.args.length ? command.args.map((a, i) => (i < Math.min(...(command.counts ?? [command.args.length])) ? `<${a}>` : `[<${a}>]`)).join(' ') : 'no arguments'}`);
  }
  for (const key of Object.keys(values)) {
    if (!GLOBAL_OPTIONS.includes(key) && !(command.options as string[]).includes(key)) throw new UsageError(`${name} takes no --${key}`);
  }
  command.check?.(values, args);
  return { command, args, options: values };
}

function print(io: SanctlIo, options: Options, data: unknown, human: string | string[]): void {
  if (options.json) io.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
  else io.stdout.write(`${[human].flat().join('\n')}\n`);
}

function failure(io: SanctlIo, options: Options, e: unknown): number {
  const err = e as Error;
  const code = e instanceof UsageError || (e instanceof TransportError && e.code === 'BAD_TARGET') ? EXIT_USAGE
    : e instanceof TransportError ? EXIT_TRANSPORT : EXIT_FAILED;
  io.stderr.write(`sanctl: ${err.message}\n`);
  if (code === EXIT_USAGE && e instanceof UsageError) io.stderr.write(`${USAGE}\n`);
  if (options.json) {
    const sense = e instanceof ScsiError ? { status: e.status, sense: e.sense } : {};
    const partial = (e as { partial?: PartialRead }).partial;
    io.stdout.write(`${JSON.stringify({ error: { message: err.message, code: (e as { code?: string }).code, ...sense, ...(partial ? { partial } : {}) } })}\n`);
  }
  return code;
}

// ---- Values -------------------------------------------------------------------------------------------

const UNITS: Record<string, number> = {
  '': 1, b: 1, k: 2 ** 10, kib: 2 ** 10, m: 2 ** 20, mib: 2 ** 20, g: 2 ** 30, gib: 2 ** 30, t: 2 ** 40, tib: 2 ** 40,
  kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12,
};

/** "1GiB", "512M", "4096", "1.5GB" -> bytes. */
export function parseSize(text: string, what = 'size'): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new UsageError(`${what} "${text}" is not a size (like 256MiB, 1GiB, 4096)`);
  const bytes = Math.round(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes)) throw new UsageError(`${what} "${text}" is too large`);
  return bytes;
}

function parseInteger(text: string | undefined, what: string, min: number, max: number): number {
  const n = Number(text);
  if (text === undefined || !/^\d+$/.test(text) || n < min || n > max) throw new UsageError(`${what} must be an integer ${min}-${max}, got "${text}"`);
  return n;
}

/** A byte count in the largest binary unit that divides it ("1 MiB", "4193792 bytes"): offsets must be exact. */
export function exactBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && v % 1024 === 0 && i < units.length - 1) { v /= 1024; i++; }
  return `${v} ${units[i]}`;
}

export function formatBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${n} bytes` : `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[i]}`;
}

function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join('  ').trimEnd());
}

// ---- Resolving names ------------------------------------------------------------------------------------

async function volumeByName(client: ScsiClient, name: string): Promise<scsi.Volume> {
  const v = (await client.listVolumes()).find((x) => x.name === name);
  if (!v) throw new Error(`no volume named "${name}"`);
  return v;
}

/** A LUN number as given, or the LUN of the named volume on the port this connection uses. */
async function resolveLun(client: ScsiClient, text: string): Promise<{ lun: number; volume?: scsi.Volume }> {
  if (/^\d+$/.test(text)) return { lun: parseInteger(text, 'LUN', 1, 16383) };
  const volume = await volumeByName(client, text);
  const port = await client.portIndex();
  const m = (await client.listMappings()).find((x) => x.port === port && x.volume === volume.number);
  if (!m) throw new Error(`volume "${text}" is not mapped on this port (port ${port}); map it with: sanctl volume map ${text} --lun N`);
  return { lun: m.lun, volume };
}

/** --port as given: an index, "all" (ALL_PORTS), or undefined. */
function portSyntax(o: Options): number | undefined {
  if (o.port === undefined) return undefined;
  return o.port === 'all' ? scsi.ALL_PORTS : parseInteger(o.port, '--port', 0, 254);
}

/** --port, or (absent) the port of this connection. */
async function portOption(ctx: Context): Promise<number> {
  return portSyntax(ctx.options) ?? ctx.client.portIndex();
}

// ---- Argument checks (before connecting) ----------------------------------------------------------------

function count(o: Options): number {
  return o.count === undefined ? 1 : parseInteger(o.count, '--count', 1, 1000000);
}

function inquiryLun(o: Options): number {
  return o.lun === undefined ? 0 : parseInteger(o.lun, '--lun', 0, 16383);
}

function createChecks(o: Options, [name]: string[] = []): { blockSize: 512 | 4096; bytes: number; lun?: number } {
  if (name !== undefined && /^\d+$/.test(name)) throw new UsageError(`a volume name cannot be all digits ("${name}" would read as LUN ${name})`);
  if (o.size === undefined) throw new UsageError('volume create needs --size');
  const blockSize = o['block-size'] === undefined ? 512 : Number(o['block-size']);
  if (blockSize !== 512 && blockSize !== 4096) throw new UsageError(`--block-size is 512 or 4096, not ${o['block-size']}`);
  const bytes = parseSize(o.size, '--size');
  if (bytes < 1) throw new UsageError('--size must be at least one block');
  if (o.stripe && o.thin) throw new UsageError('--stripe and --thin do not go together (a thin volume spreads its chunks over its media anyway)');
  portSyntax(o);
  return { blockSize, bytes, lun: o.lun === undefined ? undefined : mapLun(o) };
}

function mapLun(o: Options): number {
  return parseInteger(o.lun, '--lun', 1, 255);
}

function mapChecks(o: Options): void {
  if (o.lun === undefined) throw new UsageError('volume map and unmap need --lun');
  mapLun(o);
  portSyntax(o);
}

/** The --bytes (or --length) of read, if given. */
function readBytes(o: Options): number | undefined {
  if (o.bytes !== undefined && o.length !== undefined) throw new UsageError('--bytes and --length are the same option: give one');
  const text = o.bytes ?? o.length;
  return text === undefined ? undefined : parseSize(text, o.bytes === undefined ? '--length' : '--bytes');
}

function readChecks(o: Options, [, file]: string[]): void {
  if (file === '-' && o.json) throw new UsageError('read to stdout (-) cannot also print --json');
  readBytes(o);
  offsetOption(o);
}

/** --offset in bytes (default 0); whether it fits the volume is checked once its capacity is known. */
function offsetOption(o: Options): number {
  return o.offset === undefined ? 0 : parseSize(o.offset, '--offset');
}

/** stats' --interval in seconds (default 1; 0: no rates). */
function intervalOption(o: Options): number {
  if (o.interval === undefined) return 1;
  const s = Number(o.interval);
  if (!/^\d+(\.\d+)?$/.test(o.interval) || s > 3600) throw new UsageError(`--interval is a number of seconds, 0-3600, not "${o.interval}"`);
  return s;
}

/** The --offset as an LBA of a volume of capacity c, or a usage error that says why it does not fit. */
function offsetLba(offset: number, c: scsi.Capacity, which: string): number {
  const capacity = c.blocks * c.blockSize;
  if (offset % c.blockSize !== 0) throw new UsageError(`--offset ${offset} is not a multiple of ${which}'s ${c.blockSize}-byte blocks`);
  if (offset >= capacity) throw new UsageError(`--offset ${exactBytes(offset)} is at or past the end of ${which} (${formatBytes(capacity)})`);
  return offset / c.blockSize;
}

// ---- Commands ------------------------------------------------------------------------------------------

async function ping(ctx: Context): Promise<void> {
  const n = count(ctx.options);
  const framed = ctx.transport as CommandTransport & { ping?: () => Promise<number> };
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    if (framed.ping) times.push(await framed.ping());
    else {
      const start = process.hrtime.bigint();
      await ctx.client.testUnitReady();
      times.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
  }
  const how = framed.ping ? 'PING' : 'TEST UNIT READY';
  ctx.out({ target: ctx.transport.target, method: how, milliseconds: times },
    times.map((ms) => `${how} ${ctx.transport.target}: ${ms.toFixed(3)} ms`));
}

const DEVICE_TYPES: Record<number, string> = { 0x00: 'direct access block device', 0x0c: 'storage array controller', 0x1f: 'no device' };

async function inquiry(ctx: Context): Promise<void> {
  const lun = inquiryLun(ctx.options);
  const std = await ctx.client.inquiry(lun);
  const serial = await ctx.client.unitSerialNumber(lun);
  const ids = await ctx.client.deviceIdentification(lun);
  const idName = (d: scsi.Designator): string =>
    `${['logical unit', 'target port', 'target device'][d.association] ?? 'association ' + d.association} ${['vendor', 'T10', 'EUI-64', 'NAA', 'relative port'][d.type] ?? 'type ' + d.type}`;
  ctx.out({ lun, ...std, serial, designators: ids.map((d) => ({ association: d.association, type: d.type, codeSet: d.codeSet, value: d.text })) }, table([
    ['vendor', std.vendor], ['product', std.product], ['revision', std.revision],
    ['type', `${DEVICE_TYPES[std.deviceType] ?? 'type'} (${std.deviceType.toString(16).padStart(2, '0')}h)`],
    ['serial', serial], ...ids.map((d) => [idName(d), d.text]),
  ]));
}

async function luns(ctx: Context): Promise<void> {
  const list = await ctx.client.reportLuns();
  const port = await ctx.client.portIndex();
  const volumes = await ctx.client.listVolumes();
  const mappings = (await ctx.client.listMappings()).filter((m) => m.port === port);
  const rows = await Promise.all(list.map(async (lun) => {
    if (lun === 0) return { lun, device: 'command device' };
    if (lun >= 256) return { lun, device: (await ctx.client.inquiry(lun)).deviceType === 0x08 ? 'tape library (changer)' : 'tape drive' };
    const volume = volumes.find((v) => v.number === mappings.find((m) => m.lun === lun)?.volume);
    const c = await ctx.client.readCapacity(lun);
    return { lun, device: 'volume', volume: volume?.name, blocks: c.blocks, blockSize: c.blockSize, bytes: c.blocks * c.blockSize };
  }));
  ctx.out({ port, luns: rows }, table([['LUN', 'DEVICE', 'VOLUME', 'SIZE'],
    ...rows.map((r) => [String(r.lun), r.device, r.volume ?? '', r.bytes === undefined ? '' : formatBytes(r.bytes)])]));
}

async function capacity(ctx: Context, [which]: string[]): Promise<void> {
  const { lun, volume } = await resolveLun(ctx.client, which);
  const c = await ctx.client.readCapacity(lun);
  const bytes = c.blocks * c.blockSize;
  ctx.out({ lun, volume: volume?.name, ...c, bytes },
    `${volume ? `${volume.name} (LUN ${lun})` : `LUN ${lun}`}: ${c.blocks} blocks of ${c.blockSize} bytes = ${formatBytes(bytes)}`);
}

async function volumeCreate(ctx: Context, [name]: string[]): Promise<void> {
  const o = ctx.options;
  const { blockSize, bytes, lun: wanted } = createChecks(o, [name]);
  const media = o.media === undefined ? [] : await mediaIndexes(ctx.client, o.media);
  const spec: scsi.VolumeSpec = { name, blockSize, blocks: Math.ceil(bytes / blockSize), media, placement: o.thin ? 'thin' : o.stripe ? 'striped' : 'linear' };
  const volume = await ctx.client.createVolume(spec);
  let mapping: scsi.Mapping | undefined;
  if (!o['no-map']) {
    // Reachable from every front end unless a port is named (docs/scsi.md, "Volumes on every port").
    const port = portSyntax(o) ?? scsi.ALL_PORTS;
    const lun = wanted ?? await freeLun(ctx.client, port);
    await ctx.client.mapVolume(volume.number, port, lun);
    mapping = { port, lun, volume: volume.number };
  }
  ctx.out({ volume, mapping }, `created volume ${volume.name} (#${volume.number}, ${formatBytes(volume.blocks * volume.blockSize)}, `
    + `${volume.blockSize}-byte blocks, ${volume.placement})${mapping ? `, mapped to ${portText(mapping.port)} LUN ${mapping.lun}` : ''}`);
}

function portText(port: number): string {
  return port === scsi.ALL_PORTS ? 'every port' : `port ${port}`;
}

/** "disk0,2" -> media indexes, by name or number. */
async function mediaIndexes(client: ScsiClient, text: string): Promise<number[]> {
  const known = await client.listMedia();
  return text.split(',').map((m) => {
    const found = known.find((k) => k.name === m) ?? (/^\d+$/.test(m) ? known.find((k) => k.index === Number(m)) : undefined);
    if (!found) throw new UsageError(`no medium "${m}" (the array has ${known.map((k) => k.name || k.index).join(', ')})`);
    return found.index;
  });
}

/** The lowest LUN (1-255) free on port (on every port for ALL_PORTS). */
async function freeLun(client: ScsiClient, port: number): Promise<number> {
  const used = new Set((await client.listMappings()).filter((m) => port === scsi.ALL_PORTS || m.port === port).map((m) => m.lun));
  for (let lun = 1; lun < 256; lun++) if (!used.has(lun)) return lun;
  throw new Error(`${portText(port)} has no free LUN`);
}

async function volumeList(ctx: Context): Promise<void> {
  const volumes = await ctx.client.listVolumes();
  const mappings = await ctx.client.listMappings();
  const rows = volumes.map((v) => ({ ...v, bytes: v.blocks * v.blockSize, mappings: mappings.filter((m) => m.volume === v.number).map(({ port, lun }) => ({ port, lun })) }));
  ctx.out({ volumes: rows }, rows.length === 0 ? 'no volumes' : table([['#', 'NAME', 'SIZE', 'ALLOCATED', 'BLOCK', 'PLACEMENT', 'MEDIA', 'STATE', 'DIRTY', 'MAPPED (PORT:LUN)'],
    ...rows.map((v) => [String(v.number), v.name, formatBytes(v.bytes), formatBytes(v.allocatedBytes), String(v.blockSize), v.placement, v.media.join(',') || 'all',
      v.state, String(v.dirtySlots), v.mappings.map((m) => `${m.port}:${m.lun}`).join(' ')])]));
}

/**
 * One volume's allocation: what the media hold of it (all of it for a thick volume, the chunks
 * writes reached for a thin one) and what its media have free (where a thin volume's next chunks come from).
 */
async function volumeStatus(ctx: Context, [name]: string[]): Promise<void> {
  const v = await volumeByName(ctx.client, name);
  const media = (await ctx.client.listMedia()).filter((m) => v.media.length === 0 || v.media.includes(m.index));
  const bytes = v.blocks * v.blockSize;
  const freeBytes = media.reduce((n, m) => n + m.freeChunks * 65536, 0);
  const percent = Math.round((v.allocatedBytes / bytes) * 1000) / 10;
  const status = { ...v, bytes, allocatedPercent: percent, mediaFreeBytes: freeBytes, mediaNames: media.map((m) => m.name) };
  ctx.out({ volume: status }, `${v.name} (#${v.number}): ${v.placement}, ${formatBytes(bytes)}, ${formatBytes(v.allocatedBytes)} allocated (${percent} %), `
    + `${formatBytes(freeBytes)} free on its media (${status.mediaNames.join(', ')}), ${v.state}, ${v.dirtySlots} dirty cache slots`);
}

async function volumeDelete(ctx: Context, [name]: string[]): Promise<void> {
  const v = await volumeByName(ctx.client, name);
  await ctx.client.deleteVolume(v.number, { force: ctx.options.force });
  ctx.out({ deleted: v.name, number: v.number }, `deleted volume ${v.name} (#${v.number})`);
}

async function volumeMap(ctx: Context, [name]: string[], map: boolean): Promise<void> {
  const lun = mapLun(ctx.options);
  const v = await volumeByName(ctx.client, name);
  const port = await portOption(ctx);
  await (map ? ctx.client.mapVolume(v.number, port, lun) : ctx.client.unmapVolume(v.number, port, lun));
  ctx.out({ volume: v.name, number: v.number, port, lun, mapped: map }, `${map ? 'mapped' : 'unmapped'} volume ${v.name} ${map ? 'to' : 'from'} ${portText(port)} LUN ${lun}`);
}

function accessChecks(o: Options, args: string[], command: string): void {
  if (command === 'tape access') parseInteger(args[0], 'tape access: the LUN', 256, 16383);
  if (args.length === 3 && !['rw', 'ro', 'none', 'remove'].includes(args[2])) throw new UsageError(`${command}: the access is rw, ro, none or remove, got "${args[2]}"`);
  if (args.length === 3 && args[1] === '*' && args[2] === 'remove') throw new UsageError(`${command}: * (the initiators the list does not name) cannot be removed; set it to rw, ro or none`);
  if (args.length === 3 && (args[1].length === 0 || args[1].length > 223)) throw new UsageError(`${command}: an initiator name is 1 to 223 characters`);
}

const MODE_WORDS: Record<scsi.AccessMode, string> = { rw: 'read-write', ro: 'read-only', none: 'no access' };

/** Lists a volume's access list, or sets one initiator's access (or that of every initiator it does not name). */
async function volumeAccess(ctx: Context, [name, initiator, mode]: string[]): Promise<void> {
  const v = await volumeByName(ctx.client, name);
  await accessListOf(ctx, v.number, `volume ${v.name}`, { volume: v.name, number: v.number }, initiator, mode);
}

/** The same for a tape device, named by its LUN (the unit SET ACCESS takes is its index: LIST ACCESS pairs the two). */
async function tapeAccess(ctx: Context, [lunText, initiator, mode]: string[]): Promise<void> {
  const lun = Number(lunText);
  const devices = (await ctx.client.listTapeAccess()).filter((e) => e.unnamed);
  const d = devices.find((e) => e.tape!.lun === lun)?.tape;
  if (!d) throw new Error(`no tape device at LUN ${lun}${devices.length ? ` (the library's: ${devices.map((e) => `${e.tape!.lun} ${e.tape!.kind}`).join(', ')})` : ': the array has no library'}`);
  await accessListOf(ctx, scsi.TAPE_ACCESS_UNIT + d.device, `tape ${d.kind} at LUN ${lun}`, { lun, device: d.device, kind: d.kind }, initiator, mode);
}

/** Sets an initiator's access to `unit` when one is given, then prints the unit's list. */
async function accessListOf(ctx: Context, unit: number, what: string, json: object, initiator?: string, mode?: string): Promise<void> {
  if (initiator !== undefined) {
    await ctx.client.setAccess(unit, mode as scsi.AccessMode | 'remove', initiator === '*' ? { unnamed: true } : initiator);
  }
  const list = await ctx.client.listAccess(unit);
  const rows = list.map((e) => ({ initiator: e.unnamed ? '*' : e.initiator, access: e.mode }));
  const said = initiator === undefined ? [] : [`${initiator === '*' ? 'initiators not listed' : initiator}: ${mode === 'remove' ? 'removed' : MODE_WORDS[mode as scsi.AccessMode]} on ${what}`];
  ctx.out({ ...json, access: rows }, [...said, ...table([['INITIATOR', 'ACCESS'], ...rows.map((r) => [r.initiator, MODE_WORDS[r.access]])])]);
}

async function media(ctx: Context): Promise<void> {
  const list = await ctx.client.listMedia();
  ctx.out({ media: list }, table([['#', 'NAME', 'SIZE', 'FREE', 'SCHEDULER', 'STATE', 'ERRORS'],
    ...list.map((m) => [String(m.index), m.name, formatBytes(m.sectors * 512), formatBytes(m.freeChunks * 65536), m.scheduler, m.state, String(m.mediumErrors)])]));
}

async function ports(ctx: Context): Promise<void> {
  const list = await ctx.client.listPorts();
  ctx.out({ ports: list }, table([['#', 'NAME', 'KIND', 'ADDRESS', 'SESSIONS', 'IOP'],
    ...list.map((p) => [String(p.index), p.name, p.kind, p.address.toString(16).padStart(4, '0'), `${p.openSessions}/${p.sessions}`, String(p.iop)])]));
}

/** Counters whose change over the interval gives a rate (summed over the IOPs). */
const RATE_COUNTERS = ['commands', 'reads', 'writes', 'readBytes', 'writeBytes', 'latencyNs', 'readHits', 'readMisses', 'errors'] as const;

function sums(s: scsi.Statistics): Record<string, number> {
  const out: Record<string, number> = {};
  for (const i of s.iops) for (const [k, v] of Object.entries(i.counters)) out[k] = (out[k] ?? 0) + v;
  return out;
}

const round = (x: number, digits: number): number => Math.round(x * 10 ** digits) / 10 ** digits;

/**
 * Rates: two STATISTICS samples --interval seconds apart, the counters' change over the time between
 * them (the second sample's own command included). Then the cache and the counters as they stand.
 */
async function stats(ctx: Context): Promise<void> {
  const intervalS = intervalOption(ctx.options);
  const now = ctx.io.now ?? (() => performance.now());
  let s = await ctx.client.statistics();
  let rates: Record<string, number | null> | undefined;
  let measuredS = 0;
  if (intervalS > 0) {
    const first = sums(s);
    const t0 = now();
    await (ctx.io.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms))))(intervalS * 1000);
    s = await ctx.client.statistics();
    measuredS = Math.max((now() - t0) / 1000, 1e-6);
    const second = sums(s);
    const d = Object.fromEntries(RATE_COUNTERS.map((k) => [k, (second[k] ?? 0) - (first[k] ?? 0)]));
    const frameErrors = Object.keys(second).filter((k) => k.startsWith('ferr')).reduce((n, k) => n + second[k] - (first[k] ?? 0), 0);
    const lookups = d.readHits + d.readMisses;
    rates = {
      iops: round(d.commands / measuredS, 1), readIops: round(d.reads / measuredS, 1), writeIops: round(d.writes / measuredS, 1),
      readMBps: round(d.readBytes / measuredS / 1e6, 3), writeMBps: round(d.writeBytes / measuredS / 1e6, 3),
      latencyUs: d.commands > 0 ? round(d.latencyNs / d.commands / 1e3, 1) : null,
      readHitRate: lookups > 0 ? round(d.readHits / lookups, 4) : null,
      errorsPerS: round(d.errors / measuredS, 1), frameErrorsPerS: round(frameErrors / measuredS, 1),
    };
  }
  const names = Object.keys(s.iops[0]?.counters ?? {});
  const rateRows = rates === undefined ? [] : [
    ...table([[`RATES OVER ${measuredS.toFixed(2)} S`, 'PER SECOND'],
      ['commands (IOPS)', String(rates.iops)], ['reads', String(rates.readIops)], ['writes', String(rates.writeIops)],
      ['read MB', String(rates.readMBps)], ['write MB', String(rates.writeMBps)], ['errors', String(rates.errorsPerS)],
      ['frame errors', String(rates.frameErrorsPerS)]]),
    `mean latency ${rates.latencyUs === null ? '-' : `${rates.latencyUs} µs`}, read hits ${rates.readHitRate === null ? '-' : `${round(rates.readHitRate * 100, 1)}%`}`,
    '',
  ];
  ctx.out(rates === undefined ? s : { intervalS: round(measuredS, 3), rates, ...s }, [
    ...rateRows,
    ...table([['CACHE', 'SLOTS', 'FREE', 'CLEAN', 'DIRTY', 'PINNED', 'READ HITS', 'READ MISSES', 'WRITE HITS'],
      ['', ...[s.cache.slots, s.cache.free, s.cache.clean, s.cache.dirty, s.cache.pinned, s.cache.readHits, s.cache.readMisses, s.cache.writeHits].map(String)]]),
    '',
    ...table([['COUNTER (TOTAL)', ...s.iops.map((i) => `${i.role}${i.index}`)], ...names.map((n) => [n, ...s.iops.map((i) => String(i.counters[n]))])]),
  ]);
}

// ---- Transfers ------------------------------------------------------------------------------------------

const PROGRESS_MIN_BYTES = 1 << 20;

/** A progress bar on stderr, only on a terminal and only for transfers over 1 MiB. */
function progressBar(io: SanctlIo, verb: string, total?: number): { update(done: number): void; end(): void } {
  const start = Date.now();
  let shown = 0;
  let drawn = false;
  const draw = (done: number): void => {
    const seconds = Math.max((Date.now() - start) / 1000, 1e-3);
    const rate = `${formatBytes(Math.round(done / seconds))}/s`;
    const bar = total ? `[${'#'.repeat(Math.floor((30 * done) / total)).padEnd(30)}] ${Math.floor((100 * done) / total)}% ` : '';
    io.stderr.write(`\r${verb} ${bar}${formatBytes(done)}${total ? ` of ${formatBytes(total)}` : ''}, ${rate}   `);
    drawn = true;
  };
  return {
    update(done) {
      if (!io.stderr.isTTY || (total ?? done) <= PROGRESS_MIN_BYTES || Date.now() - shown < 100) return;
      shown = Date.now();
      draw(done);
    },
    end() {
      if (drawn) io.stderr.write('\n');
    },
  };
}

async function write(ctx: Context, [which, file]: string[]): Promise<void> {
  const offset = offsetOption(ctx.options);
  const { lun, volume } = await resolveLun(ctx.client, which);
  const c = await ctx.client.readCapacity(lun);
  const lba = offsetLba(offset, c, which);
  const capacity = c.blocks * c.blockSize;
  const size = file === '-' ? undefined : fs.statSync(file).size;
  if (size !== undefined && offset + size > capacity) {
    throw new Error(`${file} (${formatBytes(size)})${offset > 0 ? ` at offset ${exactBytes(offset)}` : ''} does not fit in ${which} (${formatBytes(capacity)})`);
  }
  const source = file === '-' ? ctx.io.stdin : fs.createReadStream(file, { highWaterMark: 1 << 20 });
  const bar = progressBar(ctx.io, 'write', size);
  const start = Date.now();
  const bytes = await ctx.client.writeStream(lun, source, (done) => bar.update(done), { fua: ctx.options.fua, lba }).finally(() => bar.end());
  const seconds = (Date.now() - start) / 1000;
  ctx.out({ lun, volume: volume?.name, offset, bytes, blocks: Math.ceil(bytes / c.blockSize), seconds },
    `wrote ${formatBytes(bytes)} to ${volume?.name ?? `LUN ${lun}`}${offset > 0 ? ` at offset ${exactBytes(offset)}` : ''} in ${seconds.toFixed(2)} s (${formatBytes(Math.round(bytes / Math.max(seconds, 1e-3)))}/s)`);
}

/** What a read cut short leaves: the bytes that arrived, in order, and where they are. */
export interface PartialRead { goodBytes: number; totalBytes: number; file?: string }

/**
 * A read's destination: `<file>.partial`, renamed over `file` once every byte is in, so a failed
 * read never damages what `file` held. Cut short, the bytes that arrived stay in the .partial file
 * (none: it is removed).
 */
class ReadTarget {
  readonly partialPath: string;
  readonly stream: fs.WriteStream;
  private failed?: Error;
  readonly broken: Promise<never>;

  constructor(readonly file: string) {
    this.partialPath = `${file}.partial`;
    const fd = fs.openSync(this.partialPath, 'w'); // a bad path fails here, before anything is read
    this.stream = fs.createWriteStream('', { fd, highWaterMark: 1 << 20 });
    // A write error (disk full) would otherwise leave the reader waiting for 'drain' for ever.
    this.broken = new Promise<never>((_, reject) => this.stream.once('error', (e) => { this.failed = e; reject(e); }));
    this.broken.catch(() => undefined);
  }

  private async finish(): Promise<void> {
    if (this.failed) { this.stream.destroy(); return; }
    await new Promise<void>((resolve) => this.stream.end(resolve));
    if (this.failed) throw this.failed;
  }

  async commit(): Promise<void> {
    await this.finish();
    fs.renameSync(this.partialPath, this.file);
  }

  /** Keeps the good bytes in the .partial file, or removes it when there are none. */
  async abandon(good: number): Promise<string | undefined> {
    await this.finish().catch(() => undefined);
    if (good > 0 && !this.failed) return this.partialPath;
    fs.rmSync(this.partialPath, { force: true });
    return undefined;
  }
}

async function read(ctx: Context, [which, file]: string[]): Promise<void> {
  const bytes = readBytes(ctx.options);
  const offset = offsetOption(ctx.options);
  const { lun, volume } = await resolveLun(ctx.client, which);
  const c = await ctx.client.readCapacity(lun);
  const lba = offsetLba(offset, c, which);
  const capacity = c.blocks * c.blockSize;
  const total = bytes ?? capacity - offset;
  if (offset + total > capacity) {
    throw new UsageError(`${formatBytes(total)} from offset ${exactBytes(offset)} reach past the end of ${which} (${formatBytes(capacity)})`);
  }
  const target = file === '-' ? undefined : new ReadTarget(file);
  const sink = target?.stream ?? ctx.io.stdout;
  const bar = progressBar(ctx.io, 'read', total);
  const start = Date.now();
  let good = 0;
  try {
    const reading = ctx.client.readStream(lun, sink, total, (done) => { good = done; bar.update(done); }, { lba });
    await (target ? Promise.race([reading, target.broken]) : reading);
    bar.end();
    await target?.commit();
  } catch (e) {
    bar.end();
    const kept = await target?.abandon(good);
    const where = file === '-' ? 'went to stdout' : kept ? `are in ${kept}` : 'could not be kept';
    ctx.io.stderr.write(`sanctl: read cut short: ${good} of ${total} bytes arrived${good > 0 ? ` and ${where}` : ''}${target ? `; ${file} was not touched` : ''}\n`);
    if (e instanceof Error) (e as Error & { partial?: PartialRead }).partial = { goodBytes: good, totalBytes: total, ...(kept ? { file: kept } : {}) };
    throw e;
  }
  const seconds = (Date.now() - start) / 1000;
  const summary = `read ${formatBytes(total)} from ${volume?.name ?? `LUN ${lun}`}${offset > 0 ? ` at offset ${exactBytes(offset)}` : ''} in ${seconds.toFixed(2)} s (${formatBytes(Math.round(total / Math.max(seconds, 1e-3)))}/s)`;
  if (file === '-') ctx.io.stderr.write(`${summary}\n`);
  else ctx.out({ lun, volume: volume?.name, offset, bytes: total, seconds, file }, summary);
}

/** The process: sanctl as bin/sanctl.js runs it. */
export async function main(): Promise<void> {
  process.exitCode = await run(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env });
}

// ---- Tape (docs/tape.md) ------------------------------------------------------------------------------

function library(ctx: Context): TapeLibrary {
  const lun = ctx.options['library-lun'] === undefined ? CHANGER_DEFAULT_LUN : parseInteger(ctx.options['library-lun'], '--library-lun', 256, 16383);
  return new TapeLibrary(ctx.transport, lun);
}

const ELEMENT_KINDS: Record<number, string> = { 1: 'robot', 2: 'slot', 3: 'import/export', 4: 'drive' };

async function tapeList(ctx: Context): Promise<void> {
  const els = await library(ctx).elements();
  ctx.out({ elements: els.map((e) => ({ ...e, kind: ELEMENT_KINDS[e.type] })) }, table([['ELEMENT', 'KIND', 'BARCODE', 'FROM'],
    ...els.map((e) => [`${e.address.toString(16).padStart(4, '0')}h`, ELEMENT_KINDS[e.type] ?? String(e.type), e.full ? e.barcode || '(no label)' : '', e.source === undefined ? '' : `${e.source.toString(16).padStart(4, '0')}h`])]));
}

/** An element address ("4096", "0x1000", "1000h") or, where a cartridge is meant, its barcode. */
async function elementAddress(lib: TapeLibrary, text: string): Promise<number> {
  const m = /^(?:0x([0-9a-f]+)|([0-9a-f]+)h|(\d+))$/i.exec(text);
  if (m) return m[1] ? parseInt(m[1], 16) : m[2] ? parseInt(m[2], 16) : Number(m[3]);
  return (await lib.whereIs(text)).address;
}

async function tapeMove(ctx: Context, [from, to]: string[]): Promise<void> {
  const lib = library(ctx);
  const source = await elementAddress(lib, from);
  const destination = await elementAddress(lib, to);
  await lib.move(source, destination);
  ctx.out({ source, destination }, `moved ${from} from ${source.toString(16)}h to ${destination.toString(16)}h`);
}

async function tapeLoad(ctx: Context, [barcode]: string[]): Promise<void> {
  const drive = await library(ctx).assign(barcode);
  await drive.library.run(drive.lun, Buffer.from([0x17, 0, 0, 0, 0, 0])); // this process ends: the drive is not kept reserved
  ctx.out({ barcode, lun: drive.lun, element: drive.element }, `${barcode} loaded in the drive at LUN ${drive.lun} (element ${drive.element.toString(16)}h)`);
}

async function tapeUnload(ctx: Context, [barcode]: string[]): Promise<void> {
  const lib = library(ctx);
  const at = await lib.whereIs(barcode);
  const d = (await lib.drives()).find((x) => x.element === at.address);
  if (!d) throw new Error(`${barcode} is not in a drive (element ${at.address.toString(16)}h)`);
  await lib.run(d.lun, Buffer.from([0x1b, 0, 0, 0, 0, 0]));
  const home = at.source ?? (await lib.elements()).find((e) => e.type === 2 && !e.full)?.address;
  if (home === undefined) throw new Error('no free slot to put it back in');
  await lib.move(at.address, home);
  ctx.out({ barcode, element: home }, `${barcode} unloaded and back in element ${home.toString(16)}h`);
}

async function tapeWrite(ctx: Context, [barcode, file]: string[]): Promise<void> {
  const data = fs.readFileSync(file);
  const drive = await library(ctx).assign(barcode);
  const bar = progressBar(ctx.io, 'tape write', data.length);
  try {
    await writeLabelledSet(drive, [{ name: path.basename(file), data }], { progress: (n) => bar.update(n) });
  } finally {
    bar.end();
    await drive.release();
  }
  ctx.out({ barcode, file, bytes: data.length, lun: drive.lun }, `wrote ${formatBytes(data.length)} of ${file} to ${barcode} as a labelled tape (drive at LUN ${drive.lun})`);
}

async function tapeRead(ctx: Context, [barcode, file]: string[]): Promise<void> {
  const n = ctx.options.file === undefined ? 1 : parseInteger(ctx.options.file, '--file', 1, 9999);
  const drive = await library(ctx).assign(barcode);
  let set;
  try { set = await readLabelledSet(drive); } finally { await drive.release(); }
  const f = set.files[n - 1];
  if (!f) throw new Error(`${barcode} holds ${set.files.length} file(s); there is no file ${n}`);
  fs.writeFileSync(`${file}.partial`, f.data);
  fs.renameSync(`${file}.partial`, file);
  ctx.out({ barcode, serial: set.serial, file: n, name: f.name, blocks: f.blocks, bytes: f.data.length, files: set.files.map((x) => x.name) },
    `read file ${n} (${f.name}, ${f.blocks} blocks, ${formatBytes(f.data.length)}) of volume ${set.serial} into ${file}`);
}

// ---- Backup and restore (docs/xcopy.md) ------------------------------------------------------------------

function backupChecks(o: Options): void {
  if (!o.tape) throw new UsageError('backup needs --tape <barcode>');
  backupRange(o);
  if (o.embodiment !== undefined) parseInteger(o.embodiment, '--embodiment', 1, 4);
}

/** --range LBA+COUNT (blocks), or undefined for the whole volume. */
function backupRange(o: Options): { lba: number; blocks: number } | undefined {
  if (o.range === undefined) return undefined;
  const m = /^(\d+)\+(\d+)$/.exec(o.range);
  if (!m || Number(m[2]) === 0) throw new UsageError('--range is LBA+COUNT in blocks, e.g. 0+2048');
  return { lba: Number(m[1]), blocks: Number(m[2]) };
}

async function backup(ctx: Context, [name]: string[]): Promise<void> {
  const vol = await volumeByName(ctx.client, name);
  const range = backupRange(ctx.options);
  if (range && range.lba + range.blocks > vol.blocks) throw new Error(`--range ${ctx.options.range} goes past the end of ${name} (${vol.blocks} blocks)`);
  const bar = progressBar(ctx.io, 'backup', (range?.blocks ?? vol.blocks) * vol.blockSize);
  let res;
  try {
    res = await backupVolume(ctx.client, library(ctx), {
      volume: vol.number, tape: ctx.options.tape!, range, resync: ctx.options.resync ?? false,
      embodiment: ctx.options.embodiment === undefined ? undefined : parseInteger(ctx.options.embodiment, '--embodiment', 1, 4) as 1 | 2 | 3 | 4,
      onProgress: (b) => bar.update(b), pause: ctx.io.sleep ? () => ctx.io.sleep!(200) : undefined,
    });
  } finally { bar.end(); }
  ctx.out(res, `backed up ${formatBytes(res.bytes)} of ${name} to ${res.barcode} (${res.records} records of 32 KiB${res.split ? (res.embodiment === 4 ? ', the pair split by the copy' : ', the pair split first') : ''})`);
}

async function restore(ctx: Context, [barcode, name]: string[]): Promise<void> {
  const vol = await volumeByName(ctx.client, name);
  const info = await restoreVolume(ctx.client, library(ctx), { tape: barcode, volume: vol.number });
  const lba = info.firstLba ?? 0;
  ctx.out({ barcode, volume: name, from: info.name, lba, blocks: info.blocks, blockSize: info.blockSize, host: info.host, created: info.created },
    `restored ${formatBytes(info.blocks * info.blockSize)} of ${info.name} (backed up ${info.created.toISOString()} on ${info.host || 'an unnamed host'}) from ${barcode} into ${name}${lba ? ` at LBA ${lba}` : ''}`);
}
