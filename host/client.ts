// The typed SCSI client over any CommandTransport (framed TCP/serial, or the harness's in-process
// queue port): one method per command the controller answers (docs/scsi.md), GOOD or a thrown
// ScsiError with the sense decoded. writeStream/readStream move whole volumes with several commands
// in flight, as an initiator does for throughput.

import type { Readable, Writable } from 'stream';
import { CommandTransport, ScsiCommand, ScsiResult } from '../lib/transport';
import { ScsiStatus } from '../lib/protocol';
import * as scsi from '../lib/scsi';
import * as remote from '../lib/remote';
import { ScsiError, decodeSense, Management } from '../lib/scsi';

/** The command device: management commands go to LUN 0. */
export const COMMAND_DEVICE_LUN = 0;

export interface StreamOptions {
  /** Bytes per command (default 256 KiB; rounded down to whole blocks). */
  chunkBytes?: number;
  /** Commands in flight (default 8). */
  depth?: number;
  /** WRITE with FUA. */
  fua?: boolean;
  /** Where the transfer starts (default 0). */
  lba?: number;
}

export type Progress = (doneBytes: number, totalBytes?: number) => void;

export class ScsiClient {
  private readonly capacities = new Map<number, scsi.Capacity>();

  constructor(readonly transport: CommandTransport) {}

  /** Runs one command; throws ScsiError unless the status is GOOD. */
  async execute(command: ScsiCommand): Promise<ScsiResult> {
    const r = await this.transport.submit(command);
    if (r.status !== ScsiStatus.GOOD) {
      throw new ScsiError(r.status, r.status === ScsiStatus.CHECK_CONDITION ? decodeSense(r.sense) : undefined, command.cdb[0]);
    }
    return r;
  }

  private async dataIn(lun: number, cdb: Buffer, dataInLength: number): Promise<Buffer> {
    const r = await this.execute({ lun, cdb, dataInLength });
    return Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength);
  }

  async testUnitReady(lun = COMMAND_DEVICE_LUN): Promise<void> {
    await this.execute({ lun, cdb: scsi.testUnitReady() });
  }

  async inquiry(lun = COMMAND_DEVICE_LUN): Promise<scsi.StandardInquiry> {
    return scsi.parseStandardInquiry(await this.dataIn(lun, scsi.inquiry(), 255));
  }

  /** A VPD page, raw (with its 4-byte header). */
  vpd(lun: number, page: number): Promise<Buffer> {
    return this.dataIn(lun, scsi.inquiry(page), 255);
  }

  async supportedVpdPages(lun = COMMAND_DEVICE_LUN): Promise<number[]> {
    return scsi.parseSupportedVpdPages(await this.vpd(lun, 0x00));
  }

  async unitSerialNumber(lun = COMMAND_DEVICE_LUN): Promise<string> {
    return scsi.parseUnitSerialNumber(await this.vpd(lun, 0x80));
  }

  async deviceIdentification(lun = COMMAND_DEVICE_LUN): Promise<scsi.Designator[]> {
    return scsi.parseDeviceIdentification(await this.vpd(lun, 0x83));
  }

  /** The index of the array port this connection arrived on (VPD 83h relative target port - 1). */
  async portIndex(): Promise<number> {
    const rtp = (await this.deviceIdentification()).find((d) => d.type === scsi.DesignatorType.RELATIVE_TARGET_PORT);
    if (!rtp) throw new Error('the command device reports no relative target port');
    return Number(rtp.text) - 1;
  }

  async reportLuns(): Promise<number[]> {
    return scsi.parseReportLuns(await this.dataIn(COMMAND_DEVICE_LUN, scsi.reportLuns(), 8 + 256 * 8));
  }

  /** Capacity of the volume at lun, READ CAPACITY(16) when (10) cannot say. Remembered for read/write. */
  async readCapacity(lun: number): Promise<scsi.Capacity> {
    let c = scsi.parseReadCapacity10(await this.dataIn(lun, scsi.readCapacity10(), 8));
    if (c.blocks > 0xffffffff) c = scsi.parseReadCapacity16(await this.dataIn(lun, scsi.readCapacity16(), 32));
    this.capacities.set(lun, c);
    return c;
  }

  private async capacity(lun: number): Promise<scsi.Capacity> {
    return this.capacities.get(lun) ?? this.readCapacity(lun);
  }

  async read(lun: number, lba: number, blocks: number): Promise<Buffer> {
    const { blockSize } = await this.capacity(lun);
    return this.dataIn(lun, scsi.readWrite(false, lba, blocks), blocks * blockSize);
  }

  async write(lun: number, lba: number, data: Uint8Array, options: scsi.TransferOptions = {}): Promise<void> {
    const { blockSize } = await this.capacity(lun);
    if (data.length % blockSize !== 0) throw new RangeError(`write of ${data.length} bytes is not a whole number of ${blockSize}-byte blocks`);
    await this.execute({ lun, cdb: scsi.readWrite(true, lba, data.length / blockSize, options), dataOut: data });
  }

  async synchronizeCache(lun: number, options: { lba?: number; blocks?: number; immediate?: boolean } = {}): Promise<void> {
    await this.execute({ lun, cdb: scsi.synchronizeCache10(options.lba, options.blocks, options) });
  }

  async modeSenseCaching(lun: number): Promise<scsi.CachingPage> {
    return scsi.parseCachingPage(await this.dataIn(lun, scsi.modeSense6(scsi.ModePage.CACHING), 255));
  }

  /** The connection's last sense for lun (then cleared by the controller). */
  async requestSense(lun = COMMAND_DEVICE_LUN): Promise<scsi.Sense> {
    return decodeSense(await this.dataIn(lun, scsi.requestSense(), 18));
  }

  // ---- Management (command device) ------------------------------------------------------------------

  private async managementOut(serviceAction: number, parameters: Buffer): Promise<void> {
    await this.execute({ lun: COMMAND_DEVICE_LUN, cdb: scsi.management(true, serviceAction, parameters.length), dataOut: parameters });
  }

  /** A whole management list: asked again with the exact length when the first allocation cut it. */
  private async managementList(serviceAction: number, argument = 0): Promise<Buffer> {
    const ask = (bytes: number) => this.dataIn(COMMAND_DEVICE_LUN, scsi.management(false, serviceAction, bytes, argument), bytes);
    const first = await ask(64 * 1024);
    const whole = 8 + scsi.parseManagementList(first).total;
    return whole > first.length ? ask(whole) : first;
  }

  /** Creates a volume; returns it as the controller lists it. */
  async createVolume(spec: scsi.VolumeSpec): Promise<scsi.Volume> {
    await this.managementOut(Management.CREATE_VOLUME, scsi.createVolumeParameters(spec));
    const created = (await this.listVolumes()).find((v) => v.name === spec.name);
    if (!created) throw new Error(`volume "${spec.name}" was created but is not listed`);
    return created;
  }

  /** Deletes a volume; with force, unmaps it from every port first. */
  /**
   * Accepts the loss of a medium that came back blank or another array's (LIST MEDIA state "lost"):
   * its volumes become ready again and read zeros where the lost data was (dirty data the array
   * still held in NV is kept).
   */
  async reinitializeMedium(medium: number): Promise<void> {
    await this.execute({ lun: COMMAND_DEVICE_LUN, cdb: scsi.reinitializeMedium(medium) });
  }

  async deleteVolume(volume: number, options: { force?: boolean } = {}): Promise<void> {
    await this.execute({ lun: COMMAND_DEVICE_LUN, cdb: scsi.deleteVolume(volume, options.force) });
  }

  /** Maps a volume to lun of port (scsi.ALL_PORTS: every port). */
  mapVolume(volume: number, port: number, lun: number): Promise<void> {
    return this.managementOut(Management.MAP_VOLUME, scsi.mapParameters(volume, port, lun));
  }

  unmapVolume(volume: number, port: number, lun: number): Promise<void> {
    return this.managementOut(Management.UNMAP_VOLUME, scsi.mapParameters(volume, port, lun));
  }

  /** Sets (or removes) an initiator's access to a volume, or the mode of the initiators its list does not name. */
  setAccess(volume: number, mode: scsi.AccessMode | 'remove', initiator: string | { unnamed: true }): Promise<void> {
    return this.managementOut(Management.SET_ACCESS, scsi.accessParameters(volume, mode, initiator));
  }

  /** The access lists of one volume, or of all. */
  async listAccess(volume?: number): Promise<scsi.AccessEntry[]> {
    return scsi.parseAccess(await this.managementList(Management.LIST_ACCESS, volume ?? scsi.LIST_ACCESS_VOLUMES));
  }

  /**
   * Sets (or removes) an initiator's access to tape device `device` (0 the changer, then the drives:
   * the index its NAA carries), or the mode of the initiators its list does not name.
   */
  setTapeAccess(device: number, mode: scsi.AccessMode | 'remove', initiator: string | { unnamed: true }): Promise<void> {
    return this.setAccess(scsi.TAPE_ACCESS_UNIT + device, mode, initiator);
  }

  /** The access lists of one tape device, or of every one (each entry with the device's LUN). */
  async listTapeAccess(device?: number): Promise<scsi.AccessEntry[]> {
    return scsi.parseAccess(await this.managementList(Management.LIST_ACCESS, device === undefined ? scsi.LIST_ACCESS_TAPES : scsi.TAPE_ACCESS_UNIT + device));
  }

  /** Open sessions of every port, with the initiator identity each carries (what access lists name). */
  async listSessions(): Promise<scsi.Session[]> {
    return scsi.parseSessions(await this.managementList(Management.LIST_SESSIONS));
  }

  // ---- Remote pairs (docs/scsi.md, "Remote pairs"; docs/remote.md) --------------------------------

  /** Pairs a volume with a volume of another array; answered once the secondary has said yes, then the initial copy runs. */
  async remoteCreate(spec: remote.RemoteCreateSpec): Promise<remote.RemoteStatus> {
    const list = remote.remoteCreateParameters(spec);
    await this.execute({ lun: COMMAND_DEVICE_LUN, cdb: remote.remoteCreateCdb(list.length), dataOut: list });
    return this.remoteOf(spec.volume);
  }

  /** suspend | resume (a full copy again) | failover (on the secondary: the volume becomes the hosts') | delete. */
  async remoteChange(volume: number, op: remote.RemoteChangeName): Promise<void> {
    await this.execute({ lun: COMMAND_DEVICE_LUN, cdb: remote.remoteChangeCdb(volume, op) });
  }

  async remoteStatus(): Promise<remote.RemoteStatus[]> {
    return remote.parseRemoteStatus(await this.managementList(remote.RemoteAction.STATUS));
  }

  /** The relays next to this array, as they last reported (RELAY STATUS). */
  async relayStatus(): Promise<remote.RelayReport[]> {
    return remote.parseRelayStatus(await this.managementList(remote.RELAY_STATUS_ACTION));
  }

  async remoteOf(volume: number): Promise<remote.RemoteStatus> {
    const p = (await this.remoteStatus()).find((s) => s.volume === volume);
    if (!p) throw new Error(`volume ${volume} is in no remote pair`);
    return p;
  }

  // ---- Volume pairs (docs/scsi.md, "Volume pairs") -----------------------------------------------

  /** Pairs source with target (volume numbers): duplex pending, the creation copy starts. */
  async pairCreate(source: number, target: number, options: { trackKiB?: number } = {}): Promise<scsi.PairStatus> {
    await this.managementOut(Management.PAIR_CREATE, scsi.pairCreateParameters(source, target, options.trackKiB ?? 0));
    return this.pairOf(source);
  }

  /** Splits the pair of `volume`: answered at once (source split, target split pending while the copy goes on). */
  async pairSplit(volume: number): Promise<void> {
    await this.execute({ lun: COMMAND_DEVICE_LUN, cdb: scsi.pairCommand(Management.PAIR_SPLIT, volume) });
  }

  /** Resynchronises a split (or suspended) pair: copies only the tracks written on either side since the split. */
  async pairResync(volume: number): Promise<void> {
    await this.execute({ lun: COMMAND_DEVICE_LUN, cdb: scsi.pairCommand(Management.PAIR_RESYNC, volume) });
  }

  /** Reverse resync: the target's changed tracks (and the source's) are copied target -> source. */
  async pairReverse(volume: number): Promise<void> {
    await this.execute({ lun: COMMAND_DEVICE_LUN, cdb: scsi.pairCommand(Management.PAIR_REVERSE, volume) });
  }

  async pairDelete(volume: number): Promise<void> {
    await this.execute({ lun: COMMAND_DEVICE_LUN, cdb: scsi.pairCommand(Management.PAIR_DELETE, volume) });
  }

  /** Sets or clears the target's read-only attribute (writes get DATA PROTECT while it is set). */
  async pairTargetReadOnly(volume: number, readOnly: boolean): Promise<void> {
    await this.execute({ lun: COMMAND_DEVICE_LUN, cdb: scsi.pairCommand(Management.PAIR_ATTRIBUTE, volume, readOnly ? 1 : 0) });
  }

  /** Copies the pending tracks of [lba, lba + blocks) first; with wait, returns once they are on the target. */
  async pairCopyRange(volume: number, lba: number, blocks: number, options: { wait?: boolean } = {}): Promise<void> {
    const list = scsi.pairRangeParameters(lba, blocks);
    await this.execute({ lun: COMMAND_DEVICE_LUN, cdb: scsi.management(true, Management.PAIR_COPY_RANGE, list.length, volume, options.wait ? 1 : 0), dataOut: list });
  }

  async pairStatus(): Promise<scsi.PairStatus[]> {
    return scsi.parsePairStatus(await this.managementList(Management.PAIR_STATUS));
  }

  /** The status of the pair volume belongs to (either side); throws when it is in none. */
  async pairOf(volume: number): Promise<scsi.PairStatus> {
    const p = (await this.pairStatus()).find((s) => s.source === volume || s.target === volume);
    if (!p) throw new Error(`volume ${volume} is in no pair`);
    return p;
  }

  async listVolumes(): Promise<scsi.Volume[]> {
    return scsi.parseVolumes(await this.managementList(Management.LIST_VOLUMES));
  }

  async listMappings(): Promise<scsi.Mapping[]> {
    return scsi.parseMappings(await this.managementList(Management.LIST_MAPPINGS));
  }

  async listMedia(): Promise<scsi.Medium[]> {
    return scsi.parseMedia(await this.managementList(Management.LIST_MEDIA));
  }

  async listPorts(): Promise<scsi.Port[]> {
    return scsi.parsePorts(await this.managementList(Management.LIST_PORTS));
  }

  async statistics(): Promise<scsi.Statistics> {
    return scsi.parseStatistics(await this.managementList(Management.STATISTICS));
  }

  // ---- Streaming ----------------------------------------------------------------------------------

  /**
   * Writes everything `source` yields to the volume at lun from options.lba (default 0), `depth`
   * commands of `chunkBytes` in flight; a last partial block is padded with zeros. Returns the bytes
   * taken. A source longer than the rest of the volume fails with a RangeError before the command
   * that would pass the end.
   */
  async writeStream(lun: number, source: Readable | AsyncIterable<Uint8Array>, onProgress?: Progress, options: StreamOptions = {}): Promise<number> {
    const { blockSize, blocks: capacity } = await this.capacity(lun);
    const chunk = chunkBytes(options, blockSize);
    const window = new Window<void>(options.depth ?? 8);
    let lba = startLba(options, capacity);
    let done = 0;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const issue = async (data: Buffer): Promise<void> => {
      const blocks = Math.ceil(data.length / blockSize);
      const padded = data.length === blocks * blockSize ? data : Buffer.concat([data, Buffer.alloc(blocks * blockSize - data.length)]);
      const at = lba;
      if (at + blocks > capacity) throw new RangeError(`the data goes past the end of the volume (${capacity} blocks of ${blockSize} bytes) at block ${capacity}`);
      lba += blocks;
      await window.push(this.write(lun, at, padded, options).then(() => onProgress?.((done += data.length))));
    };
    try {
      for await (const piece of source) {
        const b = Buffer.isBuffer(piece) ? piece : Buffer.from(piece);
        pending.push(b);
        pendingBytes += b.length;
        if (pendingBytes < chunk) continue;
        const all = Buffer.concat(pending, pendingBytes);
        let at = 0;
        for (; all.length - at >= chunk; at += chunk) await issue(all.subarray(at, at + chunk));
        pending = at < all.length ? [all.subarray(at)] : [];
        pendingBytes = all.length - at;
      }
      if (pendingBytes > 0) await issue(Buffer.concat(pending, pendingBytes));
      await window.drain();
    } catch (e) {
      await window.settle();
      throw e;
    }
    return done;
  }

  /**
   * Reads `bytes` (default: to the end of the volume) from options.lba (default 0) of the volume at
   * lun into `sink`, in order, `depth` commands in flight, honouring the sink's back-pressure. The
   * sink is not ended.
   */
  async readStream(lun: number, sink: Writable, bytes?: number, onProgress?: Progress, options: StreamOptions = {}): Promise<number> {
    const { blockSize, blocks } = await this.capacity(lun);
    const first = startLba(options, blocks);
    const left = (blocks - first) * blockSize;
    const total = bytes ?? left;
    if (total > left) throw new RangeError(`${total} bytes asked from block ${first} of a volume of ${blocks * blockSize} bytes`);
    const chunk = chunkBytes(options, blockSize);
    const window = new Window<Buffer>(options.depth ?? 8);
    let done = 0;
    const deliver = async (data: Buffer[]): Promise<void> => {
      for (const d of data) {
        const part = d.subarray(0, Math.min(d.length, total - done));
        done += part.length;
        if (!sink.write(part)) await new Promise((resolve) => sink.once('drain', resolve));
        onProgress?.(done, total);
      }
    };
    try {
      for (let offset = 0; offset < total; offset += chunk) {
        const n = Math.ceil(Math.min(chunk, total - offset) / blockSize);
        await deliver(await window.push(this.read(lun, first + offset / blockSize, n)));
      }
      await deliver(await window.drain());
    } catch (e) {
      await window.settle();
      throw e;
    }
    return done;
  }
}

function startLba(options: StreamOptions, capacity: number): number {
  const lba = options.lba ?? 0;
  if (!Number.isSafeInteger(lba) || lba < 0 || lba >= capacity) throw new RangeError(`start block ${lba} is not within the volume's ${capacity} blocks`);
  return lba;
}

function chunkBytes(options: StreamOptions, blockSize: number): number {
  const chunk = Math.floor((options.chunkBytes ?? 256 * 1024) / blockSize) * blockSize;
  if (chunk < blockSize) throw new RangeError(`chunkBytes must hold at least one ${blockSize}-byte block`);
  return chunk;
}

/** Up to `depth` commands in flight; results come back in submission order. */
class Window<T> {
  private readonly queue: Promise<T>[] = [];

  constructor(private readonly depth: number) {}

  /** Adds a command; when the window is full, waits for the oldest and returns its result. */
  async push(p: Promise<T>): Promise<T[]> {
    p.catch(() => undefined); // awaited in order below; an early failure must not go unhandled meanwhile
    this.queue.push(p);
    return this.queue.length >= this.depth ? [await this.queue.shift()!] : [];
  }

  async drain(): Promise<T[]> {
    const out: T[] = [];
    while (this.queue.length > 0) out.push(await this.queue.shift()!);
    return out;
  }

  /** Lets every command still in flight finish, whatever its outcome. */
  async settle(): Promise<void> {
    await Promise.allSettled(this.queue.splice(0));
  }
}
