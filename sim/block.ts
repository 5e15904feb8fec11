// Self-identifying blocks: every sector the simulator writes says whose it is — the volume
// instance (a number never reused in a run, unlike the array's volume numbers), the block's LBA,
// the write generation (one per WRITE command) and the sector's index in its block — and the rest
// of the sector is a stream drawn from those, so a block read back is named precisely: the right
// one, an older one, another volume's, a deleted volume's, another LBA's, zeros, or garbage.
export const SECTOR = 512;
const MAGIC = 0x424d4953; // "SIMB"
const HEADER = 32;

/** What a block read back turned out to be. */
export type Decoded =
  | { kind: 'zero' }
  | { kind: 'block'; uid: number; volume: number; lba: number; gen: number }
  | { kind: 'bad'; why: string };

function fillSeed(uid: number, lba: number, gen: number, sector: number): number {
  let h = 0x811c9dc5;
  for (const x of [uid, lba % 2 ** 32, Math.floor(lba / 2 ** 32), gen, sector]) h = Math.imul(h ^ x, 0x01000193) >>> 0;
  return h || 1;
}

/** Writes block `lba` of volume instance `uid` (array volume number `volume`), generation `gen`, into `out` at `at`. */
export function encodeBlock(out: Buffer, at: number, blockSize: number, uid: number, volume: number, lba: number, gen: number): void {
  for (let s = 0; s < blockSize / SECTOR; s++) {
    const o = at + s * SECTOR;
    out.writeUInt32LE(MAGIC, o);
    out.writeUInt32LE(uid, o + 4);
    out.writeUInt16LE(volume, o + 8);
    out.writeUInt8(s, o + 10);
    out.writeUInt8(blockSize === 4096 ? 3 : 0, o + 11);
    out.writeUInt32LE(lba % 2 ** 32, o + 12);
    out.writeUInt32LE(Math.floor(lba / 2 ** 32), o + 16);
    out.writeUInt32LE(gen, o + 20);
    out.writeUInt32LE(headerSum(out, o), o + 24);
    out.writeUInt32LE(0, o + 28);
    let x = fillSeed(uid, lba, gen, s);
    for (let i = HEADER; i < SECTOR; i += 4) {
      x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
      out.writeUInt32LE(x, o + i);
    }
  }
}

function headerSum(b: Buffer, o: number): number {
  let h = 0x9e3779b9;
  for (let i = 0; i < 24; i += 4) h = Math.imul(h ^ b.readUInt32LE(o + i), 0x85ebca6b) >>> 0;
  return h;
}

/** A WRITE's data: `blocks` blocks from `lba`, all of generation `gen`. */
export function encodeBlocks(blockSize: number, uid: number, volume: number, lba: number, blocks: number, gen: number): Buffer {
  const b = Buffer.allocUnsafe(blocks * blockSize);
  for (let i = 0; i < blocks; i++) encodeBlock(b, i * blockSize, blockSize, uid, volume, lba + i, gen);
  return b;
}

const ZERO = Buffer.alloc(4096);

/** Names the block at `at` of `data`: every sector must be the same block's, whole, or all must be zeros. */
export function decodeBlock(data: Uint8Array, at: number, blockSize: number): Decoded {
  const b = Buffer.from(data.buffer, data.byteOffset + at, blockSize);
  if (b.equals(ZERO.subarray(0, blockSize))) return { kind: 'zero' };
  let first: { uid: number; volume: number; lba: number; gen: number } | undefined;
  for (let s = 0; s < blockSize / SECTOR; s++) {
    const o = s * SECTOR;
    const sector = b.subarray(o, o + SECTOR);
    if (sector.equals(ZERO.subarray(0, SECTOR))) return { kind: 'bad', why: `sector ${s} of the block is zeros, the others are not` };
    if (sector.readUInt32LE(0) !== MAGIC || sector.readUInt32LE(24) !== headerSum(sector, 0)) {
      return { kind: 'bad', why: `sector ${s} is not a simulator sector (bytes ${sector.subarray(0, 16).toString('hex')})` };
    }
    const id = {
      uid: sector.readUInt32LE(4), volume: sector.readUInt16LE(8), lba: sector.readUInt32LE(12) + sector.readUInt32LE(16) * 2 ** 32,
      gen: sector.readUInt32LE(20),
    };
    if (sector[10] !== s || sector[11] !== (blockSize === 4096 ? 3 : 0)) {
      return { kind: 'bad', why: `sector ${s} holds sector ${sector[10]} of a ${sector[11] === 3 ? 4096 : 512}-byte block (volume instance ${id.uid}, LBA ${id.lba}, generation ${id.gen})` };
    }
    if (first && (first.uid !== id.uid || first.lba !== id.lba || first.gen !== id.gen)) {
      return { kind: 'bad', why: `torn block: sector 0 is volume instance ${first.uid} LBA ${first.lba} generation ${first.gen}, sector ${s} is ${id.uid}/${id.lba}/${id.gen}` };
    }
    first ??= id;
    let x = fillSeed(id.uid, id.lba, id.gen, s);
    for (let i = HEADER; i < SECTOR; i += 4) {
      x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
      if (sector.readUInt32LE(i) !== x) return { kind: 'bad', why: `sector ${s} (volume instance ${id.uid}, LBA ${id.lba}, generation ${id.gen}) differs from byte ${i} on` };
    }
  }
  return { kind: 'block', ...first! };
}
