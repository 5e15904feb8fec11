// Which CHECK CONDITIONs a command may get, and when (docs/scsi.md, Sense data). A command that
// ends in CHECK CONDITION is a violation unless a row below names its class and sense and the
// condition of that row held at some point while the command was in flight (between its submit
// and its answer). docs/reliability.md prints this table.

/** Command classes, as the simulator sends them. */
export type CommandClass = 'read' | 'write' | 'writeFua' | 'sync' | 'tur' | 'mgmtOut' | 'mgmtIn';

/** What must have held while the command ran for a sense to be allowed. */
export type Condition =
  | 'unmapped' // the LUN did not address the volume all along (UNMAP or DELETE VOLUME)
  | 'deleted' // DELETE VOLUME of the volume ran meanwhile
  | 'lunChanged' // the port's LUN lost a volume (UNMAP or DELETE VOLUME) before the command ended: the session may not have been told yet
  | 'dead' // a medium under the volume was dead (fault injected, not yet back)
  | 'becoming' // a medium under the volume was having its label checked (boot, back from dead, reinitialized)
  | 'lost' // a medium under the volume was lost (blank or replaced) and not yet reinitialized
  | 'readError' // a read error was injected on a medium sector of the block in INFORMATION
  | 'poisoned' // the block in INFORMATION had an unacknowledged write cut off by a crash
  | 'writeError' // a write error was injected on a medium under the volume
  | 'slow' // a medium under the volume was slowed (a latency factor injected)
  | 'nv' // the NV file was failing (an NV error fault, until the array has rewritten it)
  | 'cacheStuck' // any medium of the array was dead, lost, becoming ready, failing writes or slowed: destages stop, the cache may fill
  | 'outOfRange'; // the simulator sent an LBA range past the end on purpose

export interface SenseRow { classes: CommandClass[]; key: number; asc: number; ascq: number; when: Condition[]; meaning: string }

const VOLUME: CommandClass[] = ['read', 'write', 'writeFua', 'sync', 'tur'];

export const SENSE_TABLE: SenseRow[] = [
  { classes: VOLUME, key: 0x05, asc: 0x25, ascq: 0x00, when: ['unmapped', 'deleted'], meaning: 'ILLEGAL REQUEST, LOGICAL UNIT NOT SUPPORTED' },
  { classes: VOLUME, key: 0x06, asc: 0x3f, ascq: 0x0e, when: ['lunChanged'], meaning: 'UNIT ATTENTION, REPORTED LUNS DATA HAS CHANGED: the first command of a session to a LUN unmapped since it last asked' },
  { classes: VOLUME, key: 0x0b, asc: 0x3f, ascq: 0x00, when: ['deleted'], meaning: 'ABORTED COMMAND, the volume was deleted while the command ran' },
  { classes: VOLUME, key: 0x02, asc: 0x04, ascq: 0x03, when: ['dead'], meaning: 'NOT READY, MANUAL INTERVENTION REQUIRED (medium dead)' },
  // FUA and SYNCHRONIZE CACHE report a slot their flush could not write for want of a medium as 04h/03h, lost media included.
  { classes: ['writeFua', 'sync'], key: 0x02, asc: 0x04, ascq: 0x03, when: ['lost', 'becoming'], meaning: 'NOT READY, MANUAL INTERVENTION REQUIRED (a flush found no medium to write to)' },
  { classes: VOLUME, key: 0x02, asc: 0x04, ascq: 0x01, when: ['becoming'], meaning: 'NOT READY, BECOMING READY (label being checked)' },
  { classes: VOLUME, key: 0x02, asc: 0x31, ascq: 0x00, when: ['lost'], meaning: 'NOT READY, MEDIUM FORMAT CORRUPTED (medium lost)' },
  { classes: ['read'], key: 0x03, asc: 0x11, ascq: 0x00, when: ['readError', 'poisoned'], meaning: 'MEDIUM ERROR, UNRECOVERED READ ERROR at INFORMATION' },
  { classes: ['writeFua', 'sync'], key: 0x03, asc: 0x0c, ascq: 0x00, when: ['writeError'], meaning: 'MEDIUM ERROR, WRITE ERROR (destage failed)' },
  // A flush bounds its wait (firmware/sequencer.ts, FLUSH_STALL_NS): stacked latency factors can make one medium write last longer.
  { classes: ['writeFua', 'sync'], key: 0x0b, asc: 0x2e, ascq: 0x02, when: ['slow'], meaning: 'ABORTED COMMAND, COMMAND TIMEOUT DURING PROCESSING (a flush made no progress for 60 s)' },
  // FUA and SYNCHRONIZE CACHE: a chunk's first destage whose init map mark the NV file could not take (not the medium's fault).
  { classes: ['write', 'writeFua', 'sync'], key: 0x04, asc: 0x0c, ascq: 0x00, when: ['nv'], meaning: 'HARDWARE ERROR, WRITE ERROR (NV persist failed or NV file failing; for a flush, an init map mark it could not take)' },
  { classes: ['mgmtOut'], key: 0x04, asc: 0x44, ascq: 0x00, when: ['nv'], meaning: 'HARDWARE ERROR, INTERNAL TARGET FAILURE (NV persist failed or NV file failing)' },
  // A READ or WRITE bounds its wait for a cache slot (firmware/sequencer.ts slotWait, cache.slotWaitMs): the cache full of dirty slots no medium takes.
  { classes: ['read', 'write', 'writeFua'], key: 0x0b, asc: 0x55, ascq: 0x01, when: ['cacheStuck'], meaning: 'ABORTED COMMAND, SYSTEM BUFFER FULL (no cache slot came free within the slot-wait bound)' },
  { classes: ['read', 'write', 'writeFua', 'sync'], key: 0x05, asc: 0x21, ascq: 0x00, when: ['outOfRange'], meaning: 'ILLEGAL REQUEST, LBA OUT OF RANGE' },
];

/** Statuses other than GOOD and CHECK CONDITION a command may get at any time (docs/scsi.md). */
export const TASK_SET_FULL = 0x28;
export const BUSY = 0x08;

export function hex(n: number): string { return n.toString(16).toUpperCase().padStart(2, '0'); }

/** The rows that name this class and sense; the caller checks their conditions. */
export function rowsFor(cls: CommandClass, key: number, asc: number, ascq: number): SenseRow[] {
  return SENSE_TABLE.filter((r) => r.classes.includes(cls) && r.key === key && r.asc === asc && r.ascq === ascq);
}

/** The table as markdown (docs/reliability.md). */
export function senseTableMarkdown(): string {
  const lines = ['| command classes | sense (key/ASC/ASCQ) | allowed when, during the command | meaning |', '|---|---|---|---|'];
  for (const r of SENSE_TABLE) {
    lines.push(`| ${r.classes.join(', ')} | ${hex(r.key)}h/${hex(r.asc)}h/${hex(r.ascq)}h | ${r.when.join(' or ')} | ${r.meaning} |`);
  }
  return lines.join('\n');
}
