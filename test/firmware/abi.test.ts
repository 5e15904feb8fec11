// The HAL ABI (firmware/abi.ts) numbers each counter and trace type once and lays its structures
// out without overlap. Two lines of work added counters, trace types, config and map fields at the
// same time (iSCSI, firmware integrity); this is the check that their merge gave each its own.
import test from 'ava';
import * as A from '../../hal/abi';

const entries = (prefix: string, skip: string[] = []): Array<[string, number]> =>
  Object.entries(A).filter(([k, v]) => k.startsWith(prefix) && typeof v === 'number' && !skip.includes(k)) as Array<[string, number]>;

function distinct(t: import('ava').ExecutionContext, what: string, list: Array<[string, number]>): void {
  const seen = new Map<number, string>();
  for (const [k, v] of list) {
    t.false(seen.has(v), `${what}: ${k} and ${seen.get(v)} are both ${v}`);
    seen.set(v, k);
  }
}

/** [start, end) ranges must not overlap. */
function disjoint(t: import('ava').ExecutionContext, what: string, ranges: Array<[string, number, number]>): void {
  const sorted = [...ranges].sort((a, b) => a[1] - b[1]);
  for (let i = 1; i < sorted.length; i++) t.true(sorted[i - 1][2] <= sorted[i][1], `${what}: ${sorted[i - 1][0]} runs into ${sorted[i][0]}`);
}

test('every STAT_* counter has its own index, 0 to STAT_COUNT - 1, and they fit the stats block', (t) => {
  const stats = entries('STAT_', ['STAT_COUNT']);
  distinct(t, 'stats', stats);
  t.deepEqual(stats.map(([, v]) => v).sort((a, b) => a - b), Array.from({ length: A.STAT_COUNT }, (_, i) => i));
  t.true(8 * A.STAT_COUNT <= A.STATS_BYTES);
});

test('every TRACE_* record type has its own number', (t) => {
  const types = entries('TRACE_', ['TRACE_BYTES']);
  distinct(t, 'trace types', types);
  t.true(types.every(([, v]) => v > 0 && v < 0x10000), 'a type fits TR_TYPE (u16)');
});

test('config block: scalar fields are distinct and below the tables; the tables do not overlap and fit the block', (t) => {
  const tables = ['CFG_IOP_TABLE', 'CFG_IOP_BYTES', 'CFG_MEDIA_TABLE', 'CFG_MEDIUM_BYTES', 'CFG_PORT_TABLE', 'CFG_PORT_BYTES',
    'CFG_PORT_EXT_TABLE', 'CFG_PORT_EXT_BYTES', 'CFG_TAPE', 'CFG_TAPE_TABLE', 'CFG_TAPE_BYTES', 'CFG_REMOTE'];
  const fields = entries('CFG_', tables);
  distinct(t, 'config fields', fields);
  t.true(A.CFG_ENTROPY + 16 <= A.CFG_IOP_TABLE && A.CFG_ARRAY_NAME + 32 <= A.CFG_ENTROPY);
  disjoint(t, 'config tables', [
    ['scalars', 0, A.CFG_IOP_TABLE],
    ['IOP table', A.CFG_IOP_TABLE, A.CFG_IOP_TABLE + A.MAX_IOPS * A.CFG_IOP_BYTES],
    ['media table', A.CFG_MEDIA_TABLE, A.CFG_MEDIA_TABLE + A.MAX_MEDIA * A.CFG_MEDIUM_BYTES],
    ['port table', A.CFG_PORT_TABLE, A.CFG_PORT_TABLE + A.MAX_PORTS * A.CFG_PORT_BYTES],
    ['port extension table', A.CFG_PORT_EXT_TABLE, A.CFG_PORT_EXT_TABLE + A.MAX_PORTS * A.CFG_PORT_EXT_BYTES],
    ['library', A.CFG_TAPE, A.CFG_TAPE + A.CTP_DENSITY + 1],
    ['tape device table', A.CFG_TAPE_TABLE, A.CFG_TAPE_TABLE + A.MAX_TAPE_DEVICES * A.CFG_TAPE_BYTES],
    // the linked nodes (remote/pair.ts): routes, then a kind byte and a 32-byte name per node
    ['remote', A.CFG_REMOTE, A.CFG_REMOTE + 256 + A.RELAY_MAX_NODES * 32],
    ['end', A.CONFIG_BYTES, A.CONFIG_BYTES],
  ]);
  t.true(A.CPX_PING_MS + 4 <= A.CFG_PORT_EXT_BYTES);
  t.true(A.CTD_NAME + 32 <= A.CFG_TAPE_BYTES);
});

test('map header: scalar fields are distinct and below the tables; the tables and the stuck list do not overlap', (t) => {
  const tables = ['MAP_IOP_TABLE', 'MAP_IOP_BYTES', 'MAP_MEDIA_TABLE', 'MAP_MEDIUM_BYTES', 'MAP_PORT_TABLE', 'MAP_PORT_BYTES',
    'MAP_CONTROL_STUCK_LIST', 'MAP_MAGIC_VALUE', 'MAP_ADDR', 'MAP_BYTES', 'MAP_TAPE_TABLE', 'MAP_TAPE_BYTES', 'MAP_RELAY_TABLE'];
  const fields = entries('MAP_', tables);
  distinct(t, 'map fields', fields);
  t.true(fields.every(([, v]) => v + 4 <= A.MAP_IOP_TABLE), 'scalars below the IOP table');
  disjoint(t, 'map tables', [
    ['IOP table', A.MAP_IOP_TABLE, A.MAP_IOP_TABLE + A.MAX_IOPS * A.MAP_IOP_BYTES],
    ['media table', A.MAP_MEDIA_TABLE, A.MAP_MEDIA_TABLE + A.MAX_MEDIA * A.MAP_MEDIUM_BYTES],
    ['port table', A.MAP_PORT_TABLE, A.MAP_PORT_TABLE + A.MAX_PORTS * A.MAP_PORT_BYTES],
    ['stuck list', A.MAP_CONTROL_STUCK_LIST, A.MAP_CONTROL_STUCK_LIST + A.CONTROL_STUCK_MAX * A.CSE_BYTES],
    ['tape device table', A.MAP_TAPE_TABLE, A.MAP_TAPE_TABLE + A.MAX_TAPE_DEVICES * A.MAP_TAPE_BYTES],
    ['relay status table', A.MAP_RELAY_TABLE, A.MAP_RELAY_TABLE + A.RELAY_STATUS_MAX * A.RLS_BYTES],
    ['end', A.MAP_BYTES, A.MAP_BYTES],
  ]);
  t.true(A.MMED_STATE + 4 <= A.MAP_MEDIUM_BYTES && A.MPORT_LISTEN_PORT + 4 <= A.MAP_PORT_BYTES);
  t.true(A.MTD_POSITION + 4 <= A.MAP_TAPE_BYTES);
});

test('session descriptor: each field once, all within SESSION_BYTES', (t) => {
  const fields = entries('SES_', ['SES_LOCAL_ADDR_BYTES', 'SES_PEER_ADDR_BYTES']);
  distinct(t, 'session fields', fields);
  const size: Record<string, number> = { SES_LOCAL_ADDR: A.SES_LOCAL_ADDR_BYTES, SES_PEER_ADDR: A.SES_PEER_ADDR_BYTES };
  t.true(fields.every(([k, v]) => v + (size[k] ?? 4) <= A.SESSION_BYTES));
  t.true(fields.filter(([k]) => !size[k]).every(([, v]) => v + 4 <= A.SES_LOCAL_ADDR), 'the addresses follow the u32 fields');
  t.true(A.SES_LOCAL_ADDR + A.SES_LOCAL_ADDR_BYTES <= A.SES_PEER_ADDR, 'the local and the peer address do not overlap');
});
