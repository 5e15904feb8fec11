// The counters of an array's redundancy unit (firmware/remote/rdlink.ts: one per channel IOP that ends
// a link), read from its common memory as test/remote/rdnode.ts reads the test image's.
import * as A from '../../hal/abi';
import { RDS, type RdStats } from './rdnode';
import type { Sites } from './sites';

/** remote/rdlink.ts MIOPX_RD: the unit's address in the IOP's map entry. */
const MIOPX_RD = 44;
/** remote/redundancy.ts RdUnit.stats: the offset of the statistics' address in the unit's header. */
const RDUNIT_STATS = 56;

export function rdArrayStats(s: Sites, array: string, iop = 0): RdStats {
  const mem = s.emu.array(array).mem;
  const u = mem.u32(A.MAP_ADDR + A.MAP_IOP_TABLE + iop * A.MAP_IOP_BYTES + MIOPX_RD);
  if (u === 0) throw new Error(`array ${array}: IOP ${iop} has no redundancy unit (it ends no link)`);
  const stats = mem.u32(u + RDUNIT_STATS);
  const out = {} as RdStats;
  for (const [k, i] of Object.entries(RDS)) out[k as keyof typeof RDS] = mem.u64(stats + i * 8);
  return out;
}
