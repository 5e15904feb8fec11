// CDBs and a send that keeps the status and sense, for the command-set tests (sbc, reservations).
import * as scsi from '../../lib/scsi';
import type { CommandTransport, ScsiResult, TaskAttribute } from '../../lib/transport';

const LUN = 1;

export interface Sent { r: ScsiResult; sense?: scsi.Sense }

/** Sends a command and returns its status and decoded sense, whatever the status. */
export async function send(t: CommandTransport, cdb: number[] | Buffer, io: { out?: Uint8Array; inLength?: number; attr?: TaskAttribute; lun?: number } = {}): Promise<Sent> {
  const r = await t.submit({ lun: io.lun ?? LUN, cdb: Buffer.from(cdb), dataOut: io.out, dataInLength: io.inLength, taskAttribute: io.attr });
  return { r, sense: r.sense.length > 0 ? scsi.decodeSense(r.sense) : undefined };
}

export function be(n: number | bigint, bytes: number): number[] {
  const out: number[] = [];
  let v = BigInt(n);
  for (let i = 0; i < bytes; i++) { out.unshift(Number(v & 0xFFn)); v >>= 8n; }
  return out;
}
export const cdb10 = (op: number, lba: number, blocks: number, b1 = 0): number[] => [op, b1, ...be(lba, 4), 0, ...be(blocks, 2), 0];
export const cdb12 = (op: number, lba: number, blocks: number, b1 = 0): number[] => [op, b1, ...be(lba, 4), ...be(blocks, 4), 0, 0];
export const cdb16 = (op: number, lba: number | bigint, blocks: number, b1 = 0): number[] => [op, b1, ...be(lba, 8), ...be(blocks, 4), 0, 0];
