// Document 003's embodiment 9 (Figs. 37-39) on the host (docs/remote.md, "Execution images"): the
// operation host sends its execution image (a buffer of pages: the application's memory) to the
// standby at each restart enabling point, only the pages changed since the last transfer, and the
// standby host restarts from it after failover.
//
// Where the image travels: as writes to an area of a volume that is the primary of a `delayed` pair,
// followed by that pair's restart point. Why not a channel of its own from host to host: the image
// then reaches the standby with the same restart point as the data it describes — the reflecting
// command writes both, and a failover discards both when the point was not reached (S482) — so the
// standby never restarts from an image of one point over the data of another; and it needs nothing
// the arrays do not do already. The cost: the pages changed between two points count against the
// standby unit's entries (docs/remote.md: 24 writes of at most 64 KiB per restart interval, the
// data's writes included), so runs of adjacent changed pages go as one write.
//
// The area: block 0 a header (magic, generation, page size, pages, image bytes, CRC-32C of the image),
// then the pages. The header is written after the pages of the same transfer: with the restart
// point's atomicity the order does not matter to the standby, but it lets loadImage refuse an area
// that was never completed (no header) rather than return zeros.
import type { ScsiClient } from './client';
import { crc32c } from '../lib/protocol';

const MAGIC = 0x4D494253; // "SBIM"
const HEADER_BYTES = 32;
/** The longest write of one transfer: one entry of the standby's unit. */
const RUN_BYTES = 64 * 1024;

export interface ImageArea {
  client: ScsiClient;
  lun: number;
  /** First block of the area on the volume. */
  lba: number;
  blockSize: number;
  /** Page size: a multiple of the block size (default 4096). */
  pageBytes?: number;
}

export interface TransferReport { generation: number; pagesSent: number; bytesSent: number; writes: number }

/** The operation host's side: sends what changed since the last transfer, then the restart point. */
export class ImageSender {
  private last?: Buffer;
  private generation = 0;
  private readonly pageBytes: number;

  constructor(private readonly area: ImageArea, private readonly restartPoint: () => Promise<void>) {
    this.pageBytes = area.pageBytes ?? 4096;
    if (this.pageBytes <= 0 || this.pageBytes % area.blockSize !== 0 || RUN_BYTES % this.pageBytes !== 0) {
      throw new Error(`image: page size ${this.pageBytes} must be a multiple of the block size ${area.blockSize} dividing ${RUN_BYTES}`);
    }
  }

  /** Sends `image` (a whole number of pages): the changed pages, the header, then the restart point. */
  async transfer(image: Uint8Array): Promise<TransferReport> {
    const img = Buffer.from(image);
    if (img.length === 0 || img.length % this.pageBytes !== 0) throw new Error(`image: ${img.length} bytes is not a whole number of ${this.pageBytes}-byte pages`);
    if (this.last && this.last.length !== img.length) this.last = undefined; // a new size: everything again
    const pages = img.length / this.pageBytes;
    const changed = (p: number) => !this.last || !img.subarray(p * this.pageBytes, (p + 1) * this.pageBytes).equals(this.last.subarray(p * this.pageBytes, (p + 1) * this.pageBytes));
    const per = RUN_BYTES / this.pageBytes;
    let pagesSent = 0;
    let writes = 0;
    for (let p = 0; p < pages;) {
      if (!changed(p)) { p++; continue; }
      let q = p + 1;
      while (q < pages && q - p < per && changed(q)) q++;
      await this.area.client.write(this.area.lun, this.pageLba(p), img.subarray(p * this.pageBytes, q * this.pageBytes));
      pagesSent += q - p;
      writes++;
      p = q;
    }
    this.generation++;
    const h = Buffer.alloc(this.area.blockSize);
    h.writeUInt32LE(MAGIC, 0);
    h.writeUInt32LE(this.generation, 4);
    h.writeUInt32LE(this.pageBytes, 8);
    h.writeUInt32LE(pages, 12);
    h.writeUInt32LE(img.length, 16);
    h.writeUInt32LE(crc32c(img), 20);
    await this.area.client.write(this.area.lun, this.area.lba, h);
    await this.restartPoint();
    this.last = img;
    return { generation: this.generation, pagesSent, bytesSent: pagesSent * this.pageBytes, writes: writes + 1 };
  }

  private pageLba(p: number): number { return this.area.lba + 1 + (p * this.pageBytes) / this.area.blockSize; }
}

/** The standby host's side, after failover: the image of the last restart point, checked by its CRC. */
export async function loadImage(area: ImageArea): Promise<{ generation: number; image: Buffer }> {
  const h = await area.client.read(area.lun, area.lba, 1);
  if (h.readUInt32LE(0) !== MAGIC) throw new Error(`image: no execution image at block ${area.lba} (no header: none was transferred up to the restart point)`);
  const generation = h.readUInt32LE(4);
  const pageBytes = h.readUInt32LE(8);
  const bytes = h.readUInt32LE(16);
  if (pageBytes !== (area.pageBytes ?? 4096) || bytes % pageBytes !== 0) throw new Error(`image: the header at block ${area.lba} names ${bytes} bytes in pages of ${pageBytes}`);
  const image = await area.client.read(area.lun, area.lba + 1, bytes / area.blockSize);
  if (crc32c(image) !== h.readUInt32LE(20)) throw new Error(`image: generation ${generation} fails its CRC (the area is not one transfer's)`);
  return { generation, image };
}
