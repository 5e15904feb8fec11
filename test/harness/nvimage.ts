// NV images as older firmware wrote them (docs/hal.md, "Layout and checksums"): the upgrade tests'
// starting points (test/harness/initmap.test.ts, test/remote/remote-nv.test.ts).
import * as fs from 'fs';
import { crc32c } from '../../lib/protocol';

/**
 * Rewrites a version 9 NV image (graceful stop) as an older firmware wrote it. Version 8 had remote
 * pair records of 128 bytes (fields in the first 120, CRC-32C at 124; version 9 made them 256 with the
 * CRC at 252): each copy is narrowed (blank stays blank; one that is not whole stays not whole); and
 * no remote difference bitmaps (version 9 put them after the remote pairs): what follows starts
 * where the narrowed table ends. Version 7 had no remote
 * pair table (version 8 put it after the thin map), version 6 no thin map either (version 7 put it
 * after the reservation table), versions 3 to 5 no reservation table either
 * (version 6 put it after the pairs, before the init map): the directory loses them, and what came
 * after starts where they began. Versions 5 and 6 then had the init map there, before the cache
 * tables; versions 3 and 4 had the cache tables there and the init map last, after the slot data;
 * version 3 with one copy of the map, records of 64 bytes of bits, their CRC-32C, 4 reserved bytes.
 * Header and table versions say the old version. The layouts are docs/hal.md's ("Layout and checksums").
 */
export function toVersion(file: string, version: 3 | 4 | 5 | 6 | 7 | 8): void {
  const nv = fs.readFileSync(file);
  const a = nv.subarray(0, 2048);
  const bh = nv.subarray(2048, 4096);
  const h = Buffer.from(bh.readBigUInt64LE(24) > a.readBigUInt64LE(24) && bh.readUInt32LE(0) === 0x564e4253 ? bh : a);
  h.writeUInt32LE(version, 4);
  const entry = (id: number): number => {
    for (let i = 0; i < h.readUInt32LE(40); i++) if (h.readUInt16LE(64 + i * 16) === id) return 64 + i * 16;
    throw new Error(`no table ${id} in the directory`);
  };
  // The tables the old version lacks: the directory's last entries (10 the reservations, 11 the thin map, 12 the remote pairs, 13 their difference bitmaps).
  const gone = version === 8 ? [13] : version === 7 ? [12, 13] : version === 6 ? [11, 12, 13] : [10, 11, 12, 13];
  let at = version === 8 ? 0 : h.readUInt32LE(entry(gone[0]) + 4); // where the first began: the end of what the old version had before it
  let narrowed = Buffer.alloc(0);
  if (version === 8) {
    const e = entry(12);
    const [offset, size, record] = [h.readUInt32LE(e + 4), h.readUInt32LE(e + 8), h.readUInt32LE(e + 12)];
    if (record !== 256) throw new Error(`remote pair records of ${record} bytes, not version 9's 256`);
    narrowed = Buffer.alloc(size / 2);
    for (let i = 0; i < size / record; i++) {
      const wide = nv.subarray(offset + i * record, offset + (i + 1) * record);
      if (wide.every((x) => x === 0)) continue;
      // Bytes 129-133 (track shift, bitmap dirty, journal count) are worked out again or reset at boot; the route (120-127) and group (128) are not.
      if (wide.subarray(120, 129).some((x) => x !== 0) || wide.subarray(134, 252).some((x) => x !== 0)) throw new Error('a remote pair record uses bytes version 8 did not have');
      const whole = crc32c(wide.subarray(0, 252)) === wide.readUInt32LE(252);
      wide.copy(narrowed, i * 128, 0, 120);
      const crc = crc32c(narrowed.subarray(i * 128, i * 128 + 124));
      narrowed.writeUInt32LE(whole ? crc : ~crc >>> 0, i * 128 + 124);
    }
    h.writeUInt32LE(narrowed.length, e + 8);
    h.writeUInt32LE(128, e + 12);
    at = offset + narrowed.length;
  }
  for (const id of gone.reverse()) {
    const e = entry(id);
    if (e !== 64 + (h.readUInt32LE(40) - 1) * 16) throw new Error(`table ${id} is not the last entry`);
    h.fill(0, e, e + 16);
    h.writeUInt32LE(h.readUInt32LE(40) - 1, 40);
  }
  for (let i = 0; i < h.readUInt32LE(40); i++) h.writeUInt16LE(version, 64 + i * 16 + 2);
  const [ei, ed, ec, eda] = [4, 5, 6, 7].map(entry); // init map, descriptors, sector CRCs, slot data
  const part = (e: number) => nv.subarray(h.readUInt32LE(e + 4), h.readUInt32LE(e + 4) + h.readUInt32LE(e + 8));
  const [map, desc, crcs, data] = [ei, ed, ec, eda].map(part);
  let init = map;
  if (version === 3) {
    init = Buffer.alloc(map.length / 2);
    for (let r = 0; r < init.length; r += 72) {
      const [x, y] = [map.subarray(r, r + 72), map.subarray(init.length + r, init.length + r + 72)];
      const cur = ((y.readUInt32LE(68) - x.readUInt32LE(68)) | 0) > 0 ? y : x; // the newer generation
      cur.copy(init, r, 0, 64);
      init.writeUInt32LE(crc32c(init.subarray(r, r + 64)), r + 64);
    }
  }
  const mapFirst = version >= 5; // the init map before the cache tables
  const cacheAt = mapFirst ? at + init.length : at;
  const dataAt = (cacheAt + desc.length + crcs.length + 4095) & ~4095;
  h.writeUInt32LE(cacheAt, ed + 4);
  h.writeUInt32LE(cacheAt + desc.length, ec + 4);
  h.writeUInt32LE(dataAt, eda + 4);
  h.writeUInt32LE(mapFirst ? at : dataAt + data.length, ei + 4);
  h.writeUInt32LE(init.length, ei + 8);
  h.writeUInt32LE(crc32c(h.subarray(0, 2044)), 2044);
  const pad = Buffer.alloc(dataAt - cacheAt - desc.length - crcs.length);
  const cacheTables = [desc, crcs, pad, data];
  const before = version === 8 ? [nv.subarray(4096, at - narrowed.length), narrowed] : [nv.subarray(4096, at)];
  fs.writeFileSync(file, Buffer.concat([h, h, ...before, ...(mapFirst ? [init, ...cacheTables] : [...cacheTables, init])]));
}

