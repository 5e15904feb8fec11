// The reference model the simulator checks the array against (docs/reliability.md, "Simulator").
//
// Catalog: the volumes, the LUN map and the media allocation, as the management commands of
// docs/scsi.md define them; the allocation follows the documented placement (linear: first fit on
// the listed media in order; striped: one contiguous extent per medium, 64 KiB stripe unit), so
// LIST MEDIA's free chunks and where each block lies can be predicted. A change whose outcome the
// array could not say (an NV failure after the change was made in memory, a power cut) is kept
// pending: the lists must match the catalog with some prefix-ordered subset of the pending changes
// applied, and a restart or a healthy NV file settles which.
//
// Contents: for every block of every volume instance, the values it may hold (candidates). A WRITE
// adds a candidate when it is submitted; acknowledged, it supersedes every candidate that ended
// before it began. Unacknowledged (failed, aborted, cut off by a crash or a closed session) it
// stays a possibility until an acknowledged write supersedes it. Time is a counter of the events
// the simulator sees (ticks), not the array's clock.
import { SECTOR } from './block';

export const CHUNK_BYTES = 65536;
export const CHUNK_SECTORS = CHUNK_BYTES / SECTOR;
const MAX_EXTENTS = 15;
export const MAX_VOLUMES = 1024;

/** A value a block may hold: the generation of the write that put it there (0: zeros). */
export interface Cand { gen: number; submit: number; end: number; acked: boolean }

const ZEROS: Cand = { gen: 0, submit: -1, end: -1, acked: true };

export type Placement = 'linear' | 'striped';

/** A volume as the catalog knows it; `uid` names the instance (volume numbers are reused). */
export interface VolumeMeta {
  uid: number;
  number: number;
  name: string;
  blockSize: number;
  blocks: number;
  placement: Placement;
  /** Media as LIST VOLUMES shows them (all media in order when CREATE listed none). */
  media: number[];
  /** Per 64 KiB volume chunk: [medium, medium chunk]. */
  chunks: Array<[number, number]>;
  /** The extents it holds (a striped volume's are rounded up to whole stripes). */
  extents: Extent[];
}

export interface Extent { medium: number; first: number; count: number }

export interface CreateSpec {
  name: string;
  blockSize: number;
  blocks: number;
  placement: Placement;
  media: number[];
  /** The number asked for, or undefined for the lowest free one. */
  number?: number;
}

/** A management change: what it does to a catalog, or the ILLEGAL REQUEST it is refused with. */
export type Change =
  | { kind: 'create'; spec: CreateSpec; uid: number }
  | { kind: 'delete'; number: number; force: boolean }
  | { kind: 'map'; number: number; port: number; lun: number }
  | { kind: 'unmap'; number: number; port: number; lun: number }
  | { kind: 'reinit'; medium: number };

export const ALL_PORTS = 0xff;

export class Catalog {
  volumes = new Map<number, VolumeMeta>(); // by number
  maps = new Map<string, number>(); // "port:lun" -> volume number
  used: boolean[][];

  constructor(readonly mediaChunks: number[], readonly ports: number) {
    this.used = mediaChunks.map((n) => Array.from({ length: n }, (_, i) => i === 0)); // chunk 0: the label
  }

  clone(): Catalog {
    const c = new Catalog(this.mediaChunks, this.ports);
    c.volumes = new Map([...this.volumes].map(([k, v]) => [k, { ...v }]));
    c.maps = new Map(this.maps);
    c.used = this.used.map((u) => [...u]);
    return c;
  }

  free(m: number): number { return this.used[m].filter((x) => !x).length; }

  byUid(uid: number): VolumeMeta | undefined {
    for (const v of this.volumes.values()) if (v.uid === uid) return v;
    return undefined;
  }

  mappedAt(port: number, lun: number): VolumeMeta | undefined {
    const n = this.maps.get(`${port}:${lun}`);
    return n === undefined ? undefined : this.volumes.get(n);
  }

  /** Where volume v is mapped: [port, lun] pairs. */
  mappingsOf(number: number): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (const [k, n] of this.maps) if (n === number) { const [p, l] = k.split(':').map(Number); out.push([p, l]); }
    return out;
  }

  /**
   * Applies a change. Returns null when the array does it, or the [key, asc, ascq] of the
   * ILLEGAL REQUEST it refuses it with (docs/scsi.md); a refused change changes nothing.
   */
  apply(c: Change): [number, number, number] | null {
    switch (c.kind) {
      case 'create': return this.create(c.spec, c.uid);
      case 'delete': {
        const v = this.volumes.get(c.number);
        if (!v) return [5, 0x80, 0x02];
        const maps = this.mappingsOf(c.number);
        if (maps.length > 0 && !c.force) return [5, 0x80, 0x03];
        for (const [p, l] of maps) this.maps.delete(`${p}:${l}`);
        this.releaseChunks(v);
        this.volumes.delete(c.number);
        return null;
      }
      case 'map': case 'unmap': {
        if (!this.volumes.has(c.number)) return [5, 0x80, 0x02];
        if (c.lun === 0 || c.lun >= 256) return [5, 0x26, 0x00];
        if (c.port !== ALL_PORTS && c.port >= this.ports) return [5, 0x82, 0x01];
        const ports = c.port === ALL_PORTS ? [...Array(this.ports).keys()] : [c.port];
        if (c.kind === 'map') {
          for (const p of ports) { const cur = this.maps.get(`${p}:${c.lun}`); if (cur !== undefined && cur !== c.number) return [5, 0x82, 0x00]; }
          for (const p of ports) this.maps.set(`${p}:${c.lun}`, c.number);
          return null;
        }
        let found = false;
        for (const p of ports) if (this.maps.get(`${p}:${c.lun}`) === c.number) { this.maps.delete(`${p}:${c.lun}`); found = true; }
        return found ? null : [5, 0x82, 0x02];
      }
      case 'reinit': return null; // the catalog does not change; contents and media state do
    }
  }

  private releaseChunks(v: VolumeMeta): void {
    for (const x of v.extents) for (let i = 0; i < x.count; i++) this.used[x.medium][x.first + i] = false;
  }

  private create(s: CreateSpec, uid: number): [number, number, number] | null {
    if (!validName(s.name)) return [5, 0x26, 0x00];
    for (const v of this.volumes.values()) if (v.name === s.name) return [5, 0x80, 0x00];
    if (s.blockSize !== 512 && s.blockSize !== 4096) return [5, 0x26, 0x00];
    if (s.blocks < 1) return [5, 0x26, 0x00];
    if (s.number !== undefined && (s.number >= MAX_VOLUMES || this.volumes.has(s.number))) return [5, 0x80, 0x01];
    if (s.media.length > 16) return [5, 0x84, 0x00];
    for (let i = 0; i < s.media.length; i++) {
      if (s.media[i] >= this.mediaChunks.length || s.media.indexOf(s.media[i]) !== i) return [5, 0x84, 0x00];
    }
    const list = s.media.length === 0 ? [...this.mediaChunks.keys()] : s.media;
    if (s.placement === 'striped' && list.length > MAX_EXTENTS) return [5, 0x26, 0x00];
    let number = s.number;
    if (number === undefined) { number = 0; while (this.volumes.has(number)) number++; }
    if (number >= MAX_VOLUMES) return [5, 0x83, 0x00];
    const chunks = Math.ceil((s.blocks * s.blockSize) / CHUNK_BYTES);
    const extents = s.placement === 'striped' ? this.allocStriped(list, chunks) : this.allocLinear(list, chunks);
    if (!extents) return [5, 0x81, 0x00];
    for (const x of extents) for (let i = 0; i < x.count; i++) this.used[x.medium][x.first + i] = true;
    const where: Array<[number, number]> = [];
    for (let c = 0; c < chunks; c++) {
      if (s.placement === 'striped') {
        const x = extents[c % extents.length];
        where.push([x.medium, x.first + Math.floor(c / extents.length)]);
      } else {
        let k = c;
        for (const x of extents) { if (k < x.count) { where.push([x.medium, x.first + k]); break; } k -= x.count; }
      }
    }
    const meta = { uid, number, name: s.name, blockSize: s.blockSize, blocks: s.blocks, placement: s.placement, media: list, chunks: where, extents };
    this.volumes.set(number, meta);
    return null;
  }

  /** One extent after another, first fit, on the listed media in order (firmware/volume.ts does the same). */
  private allocLinear(list: number[], chunks: number): Extent[] | null {
    const out: Extent[] = [];
    let need = chunks;
    for (const m of list) {
      const used = this.used[m];
      let c = 0;
      while (need > 0) {
        let start = c;
        while (start < used.length && used[start]) start++;
        if (start >= used.length) break;
        let end = start;
        while (end < used.length && !used[end]) end++;
        const take = Math.min(end - start, need);
        if (out.length >= MAX_EXTENTS) return null;
        out.push({ medium: m, first: start, count: take });
        need -= take;
        c = start + take;
      }
      if (need === 0) break;
    }
    return need > 0 ? null : out;
  }

  /** One contiguous extent of ceil(chunks / media) per listed medium, the first that fits. */
  private allocStriped(list: number[], chunks: number): Extent[] | null {
    const per = Math.ceil(chunks / list.length);
    const out: Extent[] = [];
    for (const m of list) {
      const used = this.used[m];
      let placed = false;
      for (let c = 0; c < used.length && !placed;) {
        let start = c;
        while (start < used.length && used[start]) start++;
        if (start >= used.length) break;
        let end = start;
        while (end < used.length && !used[end]) end++;
        if (end - start >= per) { out.push({ medium: m, first: start, count: per }); placed = true; }
        c = end;
      }
      if (!placed) return null;
    }
    return out;
  }
}

function validName(name: string): boolean {
  if (name.length < 1 || name.length > 31) return false;
  if (!/^[\x21-\x7e]+$/.test(name)) return false;
  return !/^[0-9]+$/.test(name);
}

/** What blocks of one volume instance may hold. */
export class Contents {
  readonly cells = new Map<number, Cand[]>();
  /** Blocks that may read MEDIUM ERROR: an unacknowledged write of them was cut off by a crash. */
  readonly poison = new Set<number>();
  /** An interrupted DELETE may have dropped its cached data: any value once written, or zeros. */
  damaged = false;
  deleted = false;

  constructor(readonly meta: VolumeMeta) {}

  candidates(lba: number): Cand[] { return this.cells.get(lba) ?? [ZEROS]; }

  add(lba: number, c: Cand): void {
    let l = this.cells.get(lba);
    if (!l) { l = [ZEROS]; this.cells.set(lba, l); }
    l.push(c);
  }

  /**
   * Drops the candidates an acknowledged write superseded before `horizon` (the earliest submit of
   * a read still in flight: such a read may still return them).
   */
  prune(lba: number, horizon: number): void {
    const l = this.cells.get(lba);
    if (!l || l.length < 2) return;
    const keep = l.filter((v) => !l.some((w) => w !== v && w.acked && w.submit > v.end && w.end < horizon));
    if (keep.length !== l.length) this.cells.set(lba, keep);
  }

  /** Is a read over [s, e] that returned generation g (0: zeros) of block lba explained? */
  allows(lba: number, gen: number, s: number, e: number): boolean {
    const l = this.candidates(lba);
    return l.some((v) => v.gen === gen && v.submit < e && !l.some((w) => w !== v && w.acked && v.end < w.submit && w.end < s));
  }

  /** Volume chunk -> [medium, medium sector of the block's first sector]. */
  where(lba: number): [number, number] {
    const byte = lba * this.meta.blockSize;
    const [m, ch] = this.meta.chunks[Math.floor(byte / CHUNK_BYTES)];
    return [m, ch * CHUNK_SECTORS + (byte % CHUNK_BYTES) / SECTOR];
  }

  /**
   * The media it has extents on: a striped volume smaller than its stripe has some it never
   * writes, yet it is not ready while any of them is not (firmware/volume.ts looks at extents).
   */
  mediaOf(): Set<number> { return new Set(this.meta.extents.map((x) => x.medium)); }
}

/** Windows of ticks during which a condition held (a fault, a delete, a medium being lost). */
export class Windows {
  private readonly w = new Map<string, Array<{ from: number; to: number; data?: unknown }>>();

  open(key: string, at: number, data?: unknown): void {
    const l = this.w.get(key) ?? [];
    l.push({ from: at, to: Infinity, data });
    this.w.set(key, l);
  }

  /** Closes every open window of `key`. */
  close(key: string, at: number): void {
    for (const x of this.w.get(key) ?? []) if (x.to === Infinity) x.to = at;
  }

  isOpen(key: string): boolean { return (this.w.get(key) ?? []).some((x) => x.to === Infinity); }

  overlaps(key: string, s: number, e: number): boolean {
    return (this.w.get(key) ?? []).some((x) => x.from <= e && x.to >= s);
  }

  /** Did one window of `key` last all of [s, e]? */
  covers(key: string, s: number, e: number): boolean {
    return (this.w.get(key) ?? []).some((x) => x.from <= s && x.to >= e);
  }

  /** The data of the windows of `key` that overlap [s, e]. */
  dataDuring<T>(key: string, s: number, e: number): T[] {
    return (this.w.get(key) ?? []).filter((x) => x.from <= e && x.to >= s).map((x) => x.data as T);
  }

  keys(prefix: string): string[] { return [...this.w.keys()].filter((k) => k.startsWith(prefix)); }

  openKeys(prefix: string): string[] { return this.keys(prefix).filter((k) => this.isOpen(k)); }
}
