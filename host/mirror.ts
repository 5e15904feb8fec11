// Document 004 (Japanese part, JP 2002-41345): the data mirror program (117, 217) that runs on the
// database server as middleware and duplexes every write to two storage areas of the array (150, 151),
// with the coordination a backup needs (215, 315): split the mirror (step 404), let the backup server
// read the secondary (steps 407-409), resynchronise (step 413) copying only the positions updated
// while split (the differential resync of the 2nd embodiment, claim 2); the third area (152) that
// shortens the split (steps 606-607, claim 3); and the read-only attribute and access control by
// initiator name for the backup (3rd embodiment, claims 4-5, 【0055】-【0057】).
//
// Model and fault assumptions. The array acknowledges a write once it is durable (non-volatile
// cache), so an acknowledged write to either area survives the host. The host may crash at any
// moment; what must survive it is the record of which tracks may differ between the areas. That
// record is a bitmap (one bit per track, `trackBytes` each) kept in a small state file, written
// atomically (temporary file, fsync, rename, fsync of the folder) *before* any write that could make
// the areas differ is sent — md's write-intent rule. In duplex a bit is set before the two writes go
// out and cleared (lazily, in memory first) once both are acknowledged; while split it stays until
// the resync has copied the track. A stale set bit costs one extra track copy, never data.
//
// Writes and copies of the same track are serialised by a per-track lock, so a resync copy never
// overwrites a newer duplexed write on the secondary with older primary data.

import * as fs from 'fs';
import * as path from 'path';
import type { ScsiClient } from './client';

/** One storage area: the LUN the host addresses it by, and its volume number on the array (for access lists). */
export interface Area {
  lun: number;
  volume: number;
}

export type MirrorState = 'duplex' | 'split' | 'resync' | 'suspended';

export interface MirrorOptions {
  primary: Area;
  secondary: Area;
  /** The third area (152) of the 2nd embodiment: the backup reads it, so the split lasts only for a copy to it. */
  third?: Area;
  /** Where the state (bitmaps, state, attribute) is kept; its folder must exist. */
  statePath: string;
  /** Bytes per bitmap bit (a power of two, at least a block; default 64 KiB). */
  trackBytes?: number;
  /** Track copies in flight during a resync or a copy to the third area (default 4). */
  copyDepth?: number;
}

/** What a resync or a copy to the third area did. */
export interface CopyReport {
  tracks: number;
  bytes: number;
}

interface StateFile {
  format: 'sanbox-mirror/1';
  state: MirrorState;
  primary: Area;
  secondary: Area;
  third: Area | null;
  trackBytes: number;
  tracks: number;
  blockSize: number;
  blocks: number;
  /** Tracks where the secondary may differ from the primary (base64 bitmap, bit t of byte t >> 3). */
  dirty: string;
  /** Tracks where the third area may differ from the secondary. */
  thirdStale: string;
  /** The secondary's read-only attribute (361 of the 3rd embodiment): set for the duration of a backup. */
  secondaryReadOnly: boolean;
  /** The backup server's initiator name while it is given access for a backup. */
  backupInitiator: string | null;
  suspendReason: string | null;
}

export class MirrorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MirrorError';
  }
}

const DEFAULT_TRACK_BYTES = 65536;

export class Mirror {
  private readonly dirty: Uint8Array;
  private readonly thirdStale: Uint8Array;
  private readonly locks = new Map<number, Promise<void>>();
  private readonly writes = new Set<Promise<unknown>>();
  private persisting: Promise<void> = Promise.resolve();
  private persistWanted = false;
  /** Bytes the last resync and the last copy to the third area copied. */
  lastResync: CopyReport = { tracks: 0, bytes: 0 };
  lastThirdCopy: CopyReport = { tracks: 0, bytes: 0 };
  private busy = false;

  private constructor(readonly client: ScsiClient, private readonly file: StateFile, private readonly statePath: string, private readonly copyDepth: number) {
    this.dirty = bitmapFrom(file.dirty, file.tracks);
    this.thirdStale = bitmapFrom(file.thirdStale, file.tracks);
  }

  /**
   * Makes a new mirror of two (or three) areas of the same geometry. Every track starts dirty and
   * stale, and the initial copy (a whole resync, and the third area's copy if there is one) runs
   * before this returns: the areas are then identical and duplexed.
   */
  static async create(client: ScsiClient, o: MirrorOptions): Promise<Mirror> {
    if (fs.existsSync(o.statePath)) throw new MirrorError(`mirror state ${o.statePath} exists already: open it, or remove it to make a new mirror`);
    const trackBytes = o.trackBytes ?? DEFAULT_TRACK_BYTES;
    const primary = await client.readCapacity(o.primary.lun);
    if (!Number.isInteger(Math.log2(trackBytes)) || trackBytes < primary.blockSize) {
      throw new MirrorError(`track size ${trackBytes} is not a power of two of at least one ${primary.blockSize}-byte block`);
    }
    for (const [name, a] of [['secondary', o.secondary], ['third', o.third]] as const) {
      if (!a) continue;
      const c = await client.readCapacity(a.lun);
      if (c.blockSize !== primary.blockSize || c.blocks < primary.blocks) {
        throw new MirrorError(`the ${name} area (LUN ${a.lun}: ${c.blocks} blocks of ${c.blockSize}) cannot hold the primary (LUN ${o.primary.lun}: ${primary.blocks} blocks of ${primary.blockSize})`);
      }
    }
    const luns = [o.primary.lun, o.secondary.lun, o.third?.lun].filter((x) => x !== undefined);
    if (new Set(luns).size !== luns.length) throw new MirrorError(`the areas must be distinct LUNs, got ${luns.join(', ')}`);
    const tracks = Math.ceil((primary.blocks * primary.blockSize) / trackBytes);
    const all = Buffer.from(new Uint8Array(Math.ceil(tracks / 8)).fill(0xff)).toString('base64');
    const file: StateFile = {
      format: 'sanbox-mirror/1', state: 'resync', primary: o.primary, secondary: o.secondary, third: o.third ?? null,
      trackBytes, tracks, blockSize: primary.blockSize, blocks: primary.blocks, dirty: all, thirdStale: all,
      secondaryReadOnly: false, backupInitiator: null, suspendReason: null,
    };
    const m = new Mirror(client, file, o.statePath, o.copyDepth ?? 4);
    await m.persistNow();
    await m.resyncBody();
    return m;
  }

  /**
   * Opens a mirror from its state file (after a restart or a crash of the host). A mirror that was
   * duplexed or resynchronising when it stopped may have had writes in flight: the tracks its bitmap
   * names are copied again before this returns. A split mirror stays split, its record intact.
   */
  static async open(client: ScsiClient, o: { statePath: string; copyDepth?: number }): Promise<Mirror> {
    let text: string;
    try {
      text = fs.readFileSync(o.statePath, 'utf8');
    } catch (e) {
      throw new MirrorError(`mirror state ${o.statePath} cannot be read: ${(e as Error).message}`);
    }
    const file = parseState(text, o.statePath);
    for (const a of [file.primary, file.secondary, file.third]) {
      if (!a) continue;
      const c = await client.readCapacity(a.lun);
      if (c.blockSize !== file.blockSize || c.blocks < file.blocks) {
        throw new MirrorError(`mirror state ${o.statePath} names LUN ${a.lun} of ${file.blocks} blocks of ${file.blockSize}, the array has ${c.blocks} of ${c.blockSize}`);
      }
    }
    const m = new Mirror(client, file, o.statePath, o.copyDepth ?? 4);
    if (file.state === 'duplex' || file.state === 'resync') {
      file.state = 'resync';
      await m.persistNow();
      await m.resyncBody();
    }
    return m;
  }

  get state(): MirrorState { return this.file.state; }
  get trackBytes(): number { return this.file.trackBytes; }
  get tracks(): number { return this.file.tracks; }
  get secondaryReadOnly(): boolean { return this.file.secondaryReadOnly; }
  get suspendReason(): string | null { return this.file.suspendReason; }
  /** Tracks recorded as possibly different between primary and secondary. */
  get dirtyTracks(): number { return countBits(this.dirty, this.file.tracks); }
  get thirdStaleTracks(): number { return countBits(this.thirdStale, this.file.tracks); }

  // ---- Host I/O -------------------------------------------------------------------------------------

  /** Reads from the primary area (the application's). */
  read(lba: number, blocks: number): Promise<Buffer> {
    this.checkRange(lba, blocks);
    return this.client.read(this.file.primary.lun, lba, blocks);
  }

  /**
   * The write duplexing function (書き込み二重化機能): the track bits are persisted first, then the
   * data goes to both areas at once (duplex, resync) or to the primary alone (split, suspended).
   * Acknowledged once the primary has it; a failed secondary write suspends the mirror (the track
   * stays recorded) rather than fail a write the primary kept.
   */
  async write(lba: number, data: Uint8Array): Promise<void> {
    const { blockSize } = this.file;
    if (data.length === 0 || data.length % blockSize !== 0) throw new RangeError(`a mirror write is whole ${blockSize}-byte blocks, got ${data.length} bytes`);
    const blocks = data.length / blockSize;
    this.checkRange(lba, blocks);
    const [first, last] = this.trackSpan(lba, blocks);
    const unlock = await this.lock(first, last);
    const p = this.writeLocked(lba, data, first, last);
    this.writes.add(p);
    try {
      await p;
    } finally {
      this.writes.delete(p);
      unlock();
    }
  }

  private async writeLocked(lba: number, data: Uint8Array, first: number, last: number): Promise<void> {
    const duplex = this.file.state === 'duplex' || this.file.state === 'resync';
    // Bits this write sets for itself: in duplex they go again once both areas have it. A bit that
    // was set already (recorded while split, or not yet resynchronised) stays.
    const own: number[] = [];
    let changed = false;
    for (let t = first; t <= last; t++) {
      if (setBit(this.dirty, t)) own.push(t);
      if (duplex && this.file.third) changed = setBit(this.thirdStale, t) || changed;
    }
    if (own.length > 0 || changed) await this.persist();
    const primary = this.client.write(this.file.primary.lun, lba, data);
    if (!duplex) return primary;
    const secondary = this.client.write(this.file.secondary.lun, lba, data).then(() => true, (e: Error) => this.suspend(`secondary write failed: ${e.message}`));
    const [, ok] = await Promise.all([primary, secondary]);
    if (ok && this.file.state !== 'suspended') for (const t of own) clearBit(this.dirty, t);
  }

  private async suspend(reason: string): Promise<false> {
    if (this.file.state !== 'suspended') {
      this.file.state = 'suspended';
      this.file.suspendReason = reason;
      await this.persist();
    }
    return false;
  }

  // ---- Mirror functions ------------------------------------------------------------------------------

  /**
   * The mirror split function (ミラー分離機能, step 404): from here on writes go to the primary only
   * and their tracks are recorded. Returns once every duplexed write still in flight has completed,
   * so the secondary is then a fixed image.
   */
  async split(): Promise<void> {
    this.require(['duplex'], 'split');
    this.file.state = 'split';
    await this.persist();
    await Promise.allSettled([...this.writes]);
  }

  /**
   * The differential resync (差分再同期機能, steps 413 / 607): copies only the recorded tracks from
   * the primary to the secondary, while new writes are duplexed again; then duplex. Refused while the
   * secondary is read-only for a backup.
   */
  async resync(): Promise<CopyReport> {
    this.require(['split', 'suspended'], 'resync');
    if (this.file.secondaryReadOnly) throw new MirrorError('the secondary area is read-only for a backup: end the backup before the resync');
    this.file.state = 'resync';
    this.file.suspendReason = null;
    await this.persist();
    return this.resyncBody();
  }

  private async resyncBody(): Promise<CopyReport> {
    const report = await this.copyTracks(this.dirty, this.file.primary, this.file.secondary, (t) => this.file.third !== null && setBit(this.thirdStale, t));
    this.lastResync = report;
    if (this.file.state === 'resync') this.file.state = 'duplex';
    await this.persist();
    return report;
  }

  /**
   * The data copy function of the 2nd embodiment (step 606): while split, copies the secondary's
   * tracks the third area does not have yet (those written to the secondary since the last copy), so
   * the third area holds the split image and the resync can start at once.
   */
  async copyToThird(): Promise<CopyReport> {
    if (!this.file.third) throw new MirrorError('this mirror has no third area');
    this.require(['split'], 'copy to the third area');
    const report = await this.copyTracks(this.thirdStale, this.file.secondary, this.file.third, () => false);
    this.lastThirdCopy = report;
    await this.persist();
    return report;
  }

  /** Copies each track whose bit is set in `bits` from one area to another, clearing the bit once the copy is acknowledged. */
  private async copyTracks(bits: Uint8Array, from: Area, to: Area, beforeWrite: (track: number) => boolean): Promise<CopyReport> {
    if (this.busy) throw new MirrorError('a copy is already running on this mirror');
    this.busy = true;
    const report: CopyReport = { tracks: 0, bytes: 0 };
    const { tracks, trackBytes, blockSize, blocks } = this.file;
    const perTrack = trackBytes / blockSize;
    let next = 0;
    let sinceSave = 0;
    const worker = async (): Promise<void> => {
      for (;;) {
        while (next < tracks && !getBit(bits, next)) next++;
        if (next >= tracks) return;
        const t = next++;
        const unlock = await this.lock(t, t);
        try {
          if (!getBit(bits, t)) continue;
          const lba = t * perTrack;
          const n = Math.min(perTrack, blocks - lba);
          if (beforeWrite(t)) await this.persist();
          const data = await this.client.read(from.lun, lba, n);
          await this.client.write(to.lun, lba, data);
          clearBit(bits, t);
          report.tracks++;
          report.bytes += data.length;
          if (++sinceSave >= 64) { sinceSave = 0; await this.persist(); }
        } finally {
          unlock();
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: this.copyDepth }, worker));
    } finally {
      this.busy = false;
    }
    return report;
  }

  // ---- Backup coordination (the database server coordination program, 115/215/315) -------------------

  /**
   * Steps 404 and 【0055】: splits the mirror, sets the secondary's read-only attribute and lets the
   * backup server's initiator read it (it is 'none' for that initiator in normal operation, claim 5).
   * With a third area (2nd embodiment): step 606 copies the secondary to it, step 607 starts the
   * differential resync at once, and the backup server is let read the third area instead. Returns
   * the area the backup reads and, with a third area, the running resync.
   */
  async prepareBackup(backupInitiator: string): Promise<{ area: Area; resync?: Promise<CopyReport> }> {
    if (!backupInitiator) throw new MirrorError('the backup server\'s initiator name is needed to let it read the area');
    await this.split();
    if (this.file.third) {
      await this.copyToThird(); // step 606
      const area = this.file.third;
      await this.client.setAccess(area.volume, 'ro', backupInitiator);
      this.file.backupInitiator = backupInitiator;
      await this.persist();
      return { area, resync: this.resync() }; // step 607
    }
    this.file.secondaryReadOnly = true;
    this.file.backupInitiator = backupInitiator;
    await this.persist();
    await this.client.setAccess(this.file.secondary.volume, 'ro', backupInitiator);
    return { area: this.file.secondary };
  }

  /**
   * Steps 411-413 and 【0057】: the backup server's access to the area it read is taken away again,
   * the read-only attribute cleared, and (1st and 3rd embodiments) the differential resync runs.
   */
  async finishBackup(): Promise<CopyReport | undefined> {
    const who = this.file.backupInitiator;
    if (!who) throw new MirrorError('no backup is in progress on this mirror');
    const area = this.file.third ?? this.file.secondary;
    await this.client.setAccess(area.volume, 'none', who);
    this.file.backupInitiator = null;
    this.file.secondaryReadOnly = false;
    await this.persist();
    if (this.file.third) return undefined; // resynchronised already at step 607
    return this.resync();
  }

  // ---- Helpers ----------------------------------------------------------------------------------------

  private require(states: MirrorState[], what: string): void {
    if (!states.includes(this.file.state)) throw new MirrorError(`cannot ${what}: the mirror is ${this.file.state} (needs ${states.join(' or ')})`);
  }

  private checkRange(lba: number, blocks: number): void {
    if (!Number.isSafeInteger(lba) || lba < 0 || !Number.isSafeInteger(blocks) || blocks < 1 || lba + blocks > this.file.blocks) {
      throw new RangeError(`blocks ${lba}+${blocks} are not within the mirror's ${this.file.blocks} blocks`);
    }
  }

  private trackSpan(lba: number, blocks: number): [number, number] {
    const perTrack = this.file.trackBytes / this.file.blockSize;
    return [Math.floor(lba / perTrack), Math.floor((lba + blocks - 1) / perTrack)];
  }

  /** Locks tracks first..last in ascending order (so two lockers never wait on each other); returns the release. */
  private async lock(first: number, last: number): Promise<() => void> {
    const releases: Array<() => void> = [];
    for (let t = first; t <= last; t++) {
      const before = this.locks.get(t) ?? Promise.resolve();
      let release!: () => void;
      const mine = new Promise<void>((r) => { release = r; });
      const tail = before.then(() => mine);
      this.locks.set(t, tail);
      await before;
      releases.push(() => { release(); if (this.locks.get(t) === tail) this.locks.delete(t); });
    }
    return () => { for (const r of releases) r(); };
  }

  /**
   * Writes the state file with what memory holds now; callers that changed it wait for a write that
   * began after their change. Writes are serialised and coalesced.
   */
  private persist(): Promise<void> {
    this.persistWanted = true;
    const run = this.persisting.then(async () => {
      if (!this.persistWanted) return;
      this.persistWanted = false;
      await this.persistNow();
    });
    this.persisting = run.catch(() => undefined);
    return run;
  }

  private async persistNow(): Promise<void> {
    this.file.dirty = Buffer.from(this.dirty).toString('base64');
    this.file.thirdStale = Buffer.from(this.thirdStale).toString('base64');
    await writeDurably(this.statePath, JSON.stringify(this.file, null, 1) + '\n');
  }
}

/** Replaces a file atomically and durably: a crash leaves the old contents or the new, never a mix. */
async function writeDurably(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp`;
  const h = await fs.promises.open(tmp, 'w');
  try {
    await h.writeFile(text);
    await h.sync();
  } finally {
    await h.close();
  }
  await fs.promises.rename(tmp, file);
  const d = await fs.promises.open(path.dirname(path.resolve(file)), 'r');
  try { await d.sync(); } finally { await d.close(); }
}

function parseState(text: string, where: string): StateFile {
  let s: StateFile;
  try {
    s = JSON.parse(text) as StateFile;
  } catch (e) {
    throw new MirrorError(`mirror state ${where} is not valid JSON: ${(e as Error).message}`);
  }
  const bad = (what: string) => new MirrorError(`mirror state ${where}: ${what}`);
  if (s?.format !== 'sanbox-mirror/1') throw bad(`format is ${JSON.stringify(s?.format)}, expected "sanbox-mirror/1"`);
  if (!['duplex', 'split', 'resync', 'suspended'].includes(s.state)) throw bad(`unknown state ${JSON.stringify(s.state)}`);
  for (const k of ['trackBytes', 'tracks', 'blockSize', 'blocks'] as const) if (!Number.isSafeInteger(s[k]) || s[k] <= 0) throw bad(`${k} is not a positive integer`);
  if (Math.ceil((s.blocks * s.blockSize) / s.trackBytes) !== s.tracks) throw bad('tracks does not match the blocks and the track size');
  for (const k of ['dirty', 'thirdStale'] as const) if (Buffer.from(s[k] ?? '', 'base64').length !== Math.ceil(s.tracks / 8)) throw bad(`the ${k} bitmap is not ${Math.ceil(s.tracks / 8)} bytes`);
  for (const a of [s.primary, s.secondary]) if (!a || !Number.isInteger(a.lun) || !Number.isInteger(a.volume)) throw bad('an area lacks its LUN or volume');
  return s;
}

function bitmapFrom(b64: string, tracks: number): Uint8Array {
  const b = new Uint8Array(Math.ceil(tracks / 8));
  b.set(Buffer.from(b64, 'base64').subarray(0, b.length));
  // bits past the last track are never set (the creation bitmap is all ones)
  if (tracks % 8 !== 0) b[b.length - 1] &= (1 << (tracks % 8)) - 1;
  return b;
}

function getBit(b: Uint8Array, t: number): boolean { return (b[t >> 3] & (1 << (t & 7))) !== 0; }

/** Sets bit t; true when it was clear. */
function setBit(b: Uint8Array, t: number): boolean {
  const was = getBit(b, t);
  b[t >> 3] |= 1 << (t & 7);
  return !was;
}

function clearBit(b: Uint8Array, t: number): void { b[t >> 3] &= ~(1 << (t & 7)); }

function countBits(b: Uint8Array, tracks: number): number {
  let n = 0;
  for (let t = 0; t < tracks; t++) if (getBit(b, t)) n++;
  return n;
}
