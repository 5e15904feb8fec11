// The HAL ABI: every address, offset, size and code shared between the firmware and hal/.
//
// This one file is compiled by asc into the firmware and imported by the TypeScript side
// (hal/abi.ts re-exports it), so the two sides cannot drift. It holds only untyped integer
// constants, which both languages read the same way: AssemblyScript inlines them as i32.
// docs/hal.md explains each structure; the tables here are the normative layout.
//
// Conventions: all structures in common memory are little-endian; an address is a byte offset
// into the controller's shared WebAssembly memory; sizes are bytes unless the name says otherwise.

// 2 came twice, on two branches: iSCSI (port extension table, PORT_ISCSI, entropy, 32-bit tags) and
// integrity (control results, medium states, CFG_NONCE, NV version 2). 3 is both, with the iSCSI
// trace types and counters renumbered after the integrity ones. 4: NBD ports (PORT_NBD, the peer's
// address in the session descriptor, NBD counters and trace records) and access-list counters.
export const ABI_VERSION: u32 = 4;

// ---- Fixed addresses -------------------------------------------------------------------------
// [0, STATIC_LIMIT): the firmware image's static data (tables, constant strings).
// The config block is written by the harness before layout(); the map header by layout().
export const STATIC_LIMIT: u32 = 0x100000;
export const CONFIG_ADDR: u32 = 0x100000;
export const CONFIG_BYTES: u32 = 0x10000;
export const MAP_ADDR: u32 = 0x110000;
export const MAP_BYTES: u32 = 0x10000;
export const REGIONS_ADDR: u32 = 0x120000;
export const PAGE_BYTES: u32 = 65536;
export const REGION_ALIGN: u32 = 4096;

// ---- Limits ----------------------------------------------------------------------------------
export const MAX_IOPS: u32 = 16;
export const MAX_MEDIA: u32 = 64;
export const MAX_PORTS: u32 = 16;
export const MAX_SESSIONS: u32 = 16; // per port
export const MAX_VOLUMES: u32 = 1024;
export const MAX_LUNS: u32 = 256; // per port, LUN 0 is the command device
export const SECTOR_BYTES: u32 = 512;
export const SLOT_BYTES: u32 = 65536; // one cache slot; also the allocation unit ("chunk") of media
export const SLOT_SECTORS: u32 = 128;
export const SLOT_SHIFT: u32 = 16;
export const BUFFER_CHUNK_BYTES: u32 = 65536; // one buffer-memory chunk of a channel IOP
export const MAX_CDB_BYTES: u32 = 32;
export const SENSE_BYTES: u32 = 18; // fixed-format sense data as sent

// ---- Config block (harness -> firmware, read-only after layout) -------------------------------
export const CONFIG_MAGIC: u32 = 0x46434253; // "SBCF"
export const CFG_MAGIC: u32 = 0;
export const CFG_VERSION: u32 = 4;
export const CFG_IOP_COUNT: u32 = 8;
export const CFG_MEDIA_COUNT: u32 = 12;
export const CFG_PORT_COUNT: u32 = 16;
export const CFG_CACHE_SLOTS: u32 = 20; // number of SLOT_BYTES cache slots
export const CFG_BUFFER_CHUNKS: u32 = 24; // buffer-memory chunks per channel IOP
export const CFG_DESTAGE_INTERVAL_US: u32 = 28; // disk IOP polls the cache directory this often
export const CFG_DESTAGE_AGE_US: u32 = 32; // a dirty slot younger than this waits (write coalescing) unless the cache is above the high mark
export const CFG_DIRTY_HIGH_PCT: u32 = 36; // above this share of dirty slots, destage without waiting for age
export const CFG_FLAGS: u32 = 40; // CFGF_*
export const CFG_SEED: u32 = 44;
export const CFG_TRACE_ENTRIES: u32 = 48; // power of two
export const CFG_CONTEXTS: u32 = 52; // command contexts per channel IOP
export const CFG_STAGE_DEPTH: u32 = 56; // medium requests the disk IOP keeps registered per medium at most
export const CFG_NONCE: u32 = 60; // u32 the harness draws (seeded in deterministic mode): part of a new NV image's identity
export const CFG_VENDOR: u32 = 64; // 8 ASCII bytes, space padded (T10 vendor identification)
export const CFG_PRODUCT: u32 = 72; // 16 ASCII bytes
export const CFG_REVISION: u32 = 88; // 4 ASCII bytes
export const CFG_SERIAL: u32 = 92; // 20 ASCII bytes: the array's serial number
export const CFG_DEVICE_ID: u32 = 112; // 16 bytes: NAA-6 identifier of the array (document 002: the device ID)
export const CFG_ARRAY_NAME: u32 = 128; // 32 ASCII bytes
export const CFG_ENTROPY: u32 = 160; // 16 bytes: seeds the firmware's PRNG (CHAP challenges); from the seed in deterministic mode
export const CFG_DESTAGE_AGE_IDLE_US: u32 = 176; // the destage age while dirty slots are at most half the high mark; it falls to CFG_DESTAGE_AGE_US as they reach it (0: same as CFG_DESTAGE_AGE_US)
export const CFG_SLOT_WAIT_US: u32 = 180; // a command or copy waiting this long for a cache slot (every slot dirty, pinned or staging) fails, naming the cache (0: SLOT_WAIT_NS_DEFAULT)
export const CFGF_DETERMINISTIC: u32 = 1;
export const CFGF_TRACE_COMMANDS: u32 = 2; // one TRACE_COMMAND record per command

export const CFG_IOP_TABLE: u32 = 256; // MAX_IOPS entries
export const CFG_IOP_BYTES: u32 = 16;
export const CIOP_ROLE: u32 = 0; // u8, ROLE_*

export const CFG_MEDIA_TABLE: u32 = 512; // MAX_MEDIA entries
export const CFG_MEDIUM_BYTES: u32 = 64;
export const CMED_SECTORS_LO: u32 = 0; // u32 pair: medium size in SECTOR_BYTES sectors
export const CMED_SECTORS_HI: u32 = 4;
export const CMED_SCHEDULER: u32 = 8; // u8, SCHED_*
export const CMED_QUEUE_DEPTH: u32 = 9; // u8: requests submitted to the binding at once
export const CMED_FLAGS: u32 = 10; // u8
export const CMED_DEADLINE_READ_US: u32 = 12; // u32, deadline policy
export const CMED_DEADLINE_WRITE_US: u32 = 16; // u32
export const CMED_NAME: u32 = 32; // 32 ASCII bytes

export const CFG_PORT_TABLE: u32 = 0x1200; // MAX_PORTS entries
export const CFG_PORT_BYTES: u32 = 64;
export const CPORT_IOP: u32 = 0; // u8: index of the channel IOP that owns the port
export const CPORT_KIND: u32 = 1; // u8, PORT_*
export const CPORT_SESSIONS: u32 = 2; // u8: connections served at once
export const CPORT_ADDRESS: u32 = 4; // u16: the port's address in frame headers (destination of commands)
export const CPORT_RX_BYTES: u32 = 8; // u32: stream ports, receive ring bytes per session (power of two)
export const CPORT_TX_BYTES: u32 = 12; // u32: stream ports, transmit ring bytes per session (power of two)
export const CPORT_QUEUE_ENTRIES: u32 = 16; // u32: queue ports, submission/completion entries per session (power of two)
export const CPORT_DATA_BYTES: u32 = 20; // u32: queue ports, data area per session
export const CPORT_IDLE_MS: u32 = 24; // u32: stream ports: a session with no command in flight that receives nothing for this long is hung up (0: never)
export const CPORT_NAME: u32 = 32; // 32 ASCII bytes

// Per-port strings that do not fit the port entry (iSCSI ports): NUL-terminated, NUL padded.
export const CFG_PORT_EXT_TABLE: u32 = 0x2000; // MAX_PORTS entries
export const CFG_PORT_EXT_BYTES: u32 = 1024;
export const CPX_TARGET_NAME: u32 = 0; // 224 bytes: the port's iSCSI target name (at most 223 characters)
export const CPX_HOST: u32 = 224; // 64 bytes: the address the port listens on, as configured ("127.0.0.1", "::1", "0.0.0.0")
export const CPX_CHAP_USER: u32 = 288; // 128 bytes: the name an initiator must give in CHAP (empty: no CHAP)
export const CPX_CHAP_SECRET: u32 = 416; // 128 bytes: its secret
export const CPX_MUTUAL_USER: u32 = 544; // 128 bytes: the name the target answers with when the initiator asks for mutual CHAP
export const CPX_MUTUAL_SECRET: u32 = 672; // 128 bytes: the target's secret for mutual CHAP
export const CPX_PING_MS: u32 = 800; // u32: an idle iSCSI connection gets a NOP-In after this long, and is dropped if unanswered as long again (0: never)
export const CPX_NAME_BYTES: u32 = 224;
export const CPX_CHAP_BYTES: u32 = 128;

export const ROLE_CHANNEL: u32 = 1;
export const ROLE_DISK: u32 = 2;

export const PORT_STREAM: u32 = 1; // framed byte stream: TCP, serial
export const PORT_QUEUE: u32 = 2; // queue pair in common memory: in-process initiators
export const PORT_ISCSI: u32 = 3; // iSCSI (RFC 7143) on a byte stream: TCP
export const PORT_NBD: u32 = 4; // NBD (the NBD project's proto.md, fixed newstyle) on a byte stream: TCP

export const SCHED_FIFO: u32 = 0;
export const SCHED_SSTF: u32 = 1;
export const SCHED_CLOOK: u32 = 2;
export const SCHED_DEADLINE: u32 = 3;

// ---- Map header (written by layout(), read by every IOP and the harness) -----------------------
export const MAP_MAGIC_VALUE: u32 = 0x504d4253; // "SBMP"
export const MAP_MAGIC: u32 = 0;
export const MAP_VERSION: u32 = 4;
export const MAP_TOTAL_BYTES: u32 = 8; // end of the last region
export const MAP_STATE: u32 = 12; // MAPS_*
export const MAP_ERROR: u32 = 16; // ERR_* when MAP_STATE is MAPS_FAILED
export const MAP_NV_ADDR: u32 = 20; // the non-volatile region: the binding persists it to a file
export const MAP_NV_BYTES: u32 = 24;
export const MAP_TRACE_RING: u32 = 28; // trace ring (entry ring of TRACE_BYTES entries)
export const MAP_CONTROL: u32 = 32; // u32 written by the harness: CTL_*
export const MAP_CONTROL_SEQ: u32 = 36; // u32 bumped by the harness with each request
export const MAP_CONTROL_DONE: u32 = 40; // u32: firmware copies CONTROL_SEQ here when the request is done
export const MAP_CACHE_STATE: u32 = 44; // shared cache control block (firmware-private layout)
export const MAP_ERROR_DETAIL: u32 = 48; // u32: which entry the error concerns (medium, port, ...)
export const MAP_NV_SQ: u32 = 52; // the array's one NV submission ring (NSQ entries)
// Result of the last control request (written before MAP_CONTROL_DONE): what could not be destaged.
export const MAP_CONTROL_LEFT: u32 = 80; // u32: dirty slots left (they stay in NV for the next boot)
export const MAP_CONTROL_STUCK: u32 = 84; // u32: entries in the stuck list (at most CONTROL_STUCK_MAX)
export const MAP_CONTROL_NV_ERRNO: u32 = 88; // u32: 0, or the errno of a failing NV file (nothing could be marked clean)
export const MAP_CONTROL_CLEAN: u32 = 92; // u32: 1 when a shutdown marked the NV image clean
export const MAP_CONTROL_STUCK_LIST: u32 = 0x1000; // CONTROL_STUCK_MAX entries of CSE_BYTES
export const CONTROL_STUCK_MAX: u32 = 256;
export const CSE_BYTES: u32 = 32;
export const CSE_VOLUME: u32 = 0; // u16
export const CSE_MEDIUM: u32 = 2; // u16: medium index, 0xFFFF when the volume's medium is not in the topology
export const CSE_REASON: u32 = 4; // u8, CSR_*
export const CSE_LBA: u32 = 8; // u64: first dirty block of the slot (volume blocks)
export const CSE_BLOCKS: u32 = 16; // u32: blocks from the first to the last dirty one
export const CSR_WRITE_ERROR: u32 = 1; // the medium refused the write
export const CSR_NOT_READY: u32 = 2; // the medium is dead
export const CSR_NO_MEDIUM: u32 = 3; // the medium is not in the topology
export const CSR_LOST: u32 = 4; // the medium is blank or another array's (REINITIALIZE MEDIUM accepts the loss)
export const CSR_NV: u32 = 5; // the NV file could not take the chunk's init map mark (failed, or being rewritten); the medium is fine
export const MAP_IOP_TABLE: u32 = 256; // MAX_IOPS entries
export const MAP_IOP_BYTES: u32 = 64;
export const MIOP_PRIVATE: u32 = 0; // u32: the IOP's private area
export const MIOP_PRIVATE_BYTES: u32 = 4;
export const MIOP_NV_CQ: u32 = 12; // ring: NV completions for this IOP
export const MIOP_TO_DISK: u32 = 16; // channel IOPs: mailbox ring to the disk IOP
export const MIOP_FROM_DISK: u32 = 20; // channel IOPs: mailbox ring from the disk IOP
export const MIOP_STATS: u32 = 24; // u32: this IOP's stats block (STAT_* counters, u64 each)
export const MIOP_WAKE_AT_NS: u32 = 32; // f64: the IOP wants poll() again at this time even when idle (0: no timer)
export const MAP_MEDIA_TABLE: u32 = 1280; // MAX_MEDIA entries
export const MAP_MEDIUM_BYTES: u32 = 16;
export const MMED_SQ: u32 = 0; // ring of MSQ entries, disk IOP -> binding
export const MMED_CQ: u32 = 4; // ring of MCQ entries, binding -> disk IOP
export const MMED_STATE: u32 = 8; // u32 written by the firmware: MEDS_*
export const MEDS_UNKNOWN: u32 = 0; // before boot
export const MEDS_OK: u32 = 1;
export const MEDS_DEAD: u32 = 2; // requests fail NOT READY; probed every second
export const MEDS_BECOMING_READY: u32 = 3; // its label is being read (or written) at boot
export const MEDS_LOST: u32 = 4; // blank or another array's: what the array wrote on it is gone (docs/hal.md, Medium labels)
export const MAP_PORT_TABLE: u32 = 2304; // MAX_PORTS entries
export const MAP_PORT_BYTES: u32 = 16;
export const MPORT_SESSIONS_ADDR: u32 = 0; // u32: array of CPORT_SESSIONS session descriptors
export const MPORT_SESSIONS: u32 = 4;
export const MPORT_LISTEN_PORT: u32 = 8; // u32: written by a TCP binding once it listens: the bound TCP port

export const MAPS_NONE: u32 = 0;
export const MAPS_LAID_OUT: u32 = 1;
export const MAPS_BOOTED: u32 = 2;
export const MAPS_FAILED: u32 = 3;

// ---- Session descriptor (one per connection slot of a port) -----------------------------------
export const SESSION_BYTES: u32 = 192;
export const SES_STATE: u32 = 0; // u32, SESS_*: written by the binding (OPEN, CLOSING) and the firmware (CLOSED)
export const SES_GENERATION: u32 = 4; // u32: the binding bumps it on every open
export const SES_FW_GENERATION: u32 = 8; // u32: the generation the firmware has reset its state for
export const SES_RX: u32 = 12; // stream: byte ring binding -> firmware
export const SES_TX: u32 = 16; // stream: byte ring firmware -> binding
export const SES_SQ: u32 = 20; // queue: QSQ entries, binding -> firmware
export const SES_CQ: u32 = 24; // queue: QCQ entries, firmware -> binding
export const SES_DATA: u32 = 28; // queue: data area the initiator's buffers live in
export const SES_DATA_BYTES: u32 = 32;
export const SES_PEER: u32 = 36; // u32: stream: the peer's frame address learnt from its first frame
export const SES_HANGUP: u32 = 40; // u32, HANGUP_*: the firmware asks the binding to close the connection (then rings the session's tx doorbell); the binding clears it when it opens the slot
export const SES_LOCAL_ADDR: u32 = 64; // 48 bytes: written by a TCP binding at open: the connection's local IP address, NUL-terminated
export const SES_LOCAL_ADDR_BYTES: u32 = 48;
export const SES_PEER_ADDR: u32 = 128; // 64 bytes: written by a TCP binding at open: the peer's IP address, NUL-terminated (an NBD client's identity)
export const SES_PEER_ADDR_BYTES: u32 = 64;

export const SESS_CLOSED: u32 = 0;
export const SESS_OPEN: u32 = 1;
export const SESS_CLOSING: u32 = 2;
export const HANGUP_NONE: u32 = 0;
export const HANGUP_IDLE: u32 = 1; // no command in flight and nothing received for CPORT_IDLE_MS: closed at once
export const HANGUP_PROTOCOL: u32 = 2; // the port's protocol ended the session (iSCSI logout, login failure, fatal PDU error): closed once the tx ring is sent

// ---- Rings -------------------------------------------------------------------------------------
// Single producer, single consumer. head and tail are free-running u32 indices (entries, or bytes
// for a byte ring), each on its own cache line; capacity is a power of two. The producer writes the
// entry, then stores tail; the consumer reads tail, consumes, then stores head. Both use atomics.
export const RING_HEADER_BYTES: u32 = 256;
export const RING_HEAD: u32 = 0;
export const RING_TAIL: u32 = 64;
export const RING_CAPACITY: u32 = 128; // entries (bytes for a byte ring)
export const RING_ENTRY_BYTES: u32 = 132; // 1 for a byte ring
export const RING_DOORBELL: u32 = 136; // the id the producer passes to hal.doorbell (0: none)
export const RING_DATA: u32 = 256;

// Doorbell ids.
export const DB_NONE: u32 = 0;
export const DB_NV: u32 = 0x10; // the NV submission ring
export const DB_MEDIUM_BASE: u32 = 0x100; // + medium index
export const DB_TX_BASE: u32 = 0x1000; // + port * MAX_SESSIONS + session (stream ports: tx ring)
export const DB_CQ_BASE: u32 = 0x2000; // + port * MAX_SESSIONS + session (queue ports: completion ring)
export const DB_TRACE: u32 = 0x3000;

// ---- Medium requests ---------------------------------------------------------------------------
export const MSQ_BYTES: u32 = 32;
export const MSQ_OPCODE: u32 = 0; // u8, MOP_*
export const MSQ_FLAGS: u32 = 1; // u8, MSQF_*
export const MSQ_ID: u32 = 4; // u32: matches the completion
export const MSQ_LBA_LO: u32 = 8; // u32 pair: first sector on the medium
export const MSQ_LBA_HI: u32 = 12;
export const MSQ_SECTORS: u32 = 16; // u32
export const MSQ_ADDR: u32 = 20; // u32: the buffer in common memory the binding moves the data to or from
export const MOP_READ: u32 = 1;
export const MOP_WRITE: u32 = 2;
export const MOP_FLUSH: u32 = 3; // make earlier writes durable on the medium
export const MSQF_FUA: u32 = 1;

export const MCQ_BYTES: u32 = 16;
export const MCQ_ID: u32 = 0; // u32
export const MCQ_STATUS: u32 = 4; // u16, MST_*
export const MCQ_ERR_LBA_LO: u32 = 8; // u32 pair: first failing sector (MST_READ_ERROR, MST_WRITE_ERROR)
export const MCQ_ERR_LBA_HI: u32 = 12;
export const MST_OK: u32 = 0;
export const MST_READ_ERROR: u32 = 1;
export const MST_WRITE_ERROR: u32 = 2;
export const MST_NOT_READY: u32 = 3; // dead or absent medium
export const MST_RANGE: u32 = 4; // beyond the end of the medium

// ---- Non-volatile memory requests --------------------------------------------------------------
// One NV submission ring for the whole array (MAP_NV_SQ), so that every persist is applied to the
// NV file in the order the IOPs queued it: a slot's "clean" descriptor must reach the file before
// the data of the slot's next owner. (Multi-producer: IOPs of one array share a thread today; a
// parallel mode must serialise producers.) Completions go to the submitting IOP's CQ.
//   NOP_RANGE:  copy [addr, addr + length) of common memory to the NV file at offset addr - MAP_NV_ADDR.
//   NOP_INLINE: write the length (<= NSQ_INLINE_MAX) bytes carried in the entry to the NV file at
//               offset addr - MAP_NV_ADDR; captures a descriptor as it was when queued.
export const NSQ_BYTES: u32 = 128;
export const NSQ_ID: u32 = 0; // u32: matches the completion
export const NSQ_IOP: u32 = 4; // u8: the IOP whose CQ gets the completion
export const NSQ_OP: u32 = 5; // u8, NOP_*
export const NSQ_FLAGS: u32 = 6; // u16, NSQF_*
export const NSQ_ADDR: u32 = 8; // u32
export const NSQ_LENGTH: u32 = 12; // u32
export const NSQ_INLINE: u32 = 32;
export const NSQ_INLINE_MAX: u32 = 96;
export const NOP_RANGE: u32 = 1;
export const NOP_INLINE: u32 = 2;
export const NSQF_SYNC: u32 = 1; // also fsync the file after this entry
export const NCQ_BYTES: u32 = 8;
export const NCQ_ID: u32 = 0;
export const NCQ_STATUS: u32 = 4; // 0 ok, else an errno-like code

// ---- Queue-port command entries (in-process initiators) ----------------------------------------
export const QSQ_BYTES: u32 = 64;
export const QSQ_TAG: u32 = 0; // u32
export const QSQ_LUN: u32 = 4; // u16
export const QSQ_CDB_LEN: u32 = 6; // u8
export const QSQ_FLAGS: u32 = 7; // u8, QF_*
export const QSQ_DATA_ADDR: u32 = 8; // u32: buffer in the session's data area
export const QSQ_DATA_LEN: u32 = 12; // u32: expected data transfer length
export const QSQ_CDB: u32 = 16; // MAX_CDB_BYTES bytes
export const QSQ_TASK_ATTR: u32 = 48; // u8
export const QF_DATA_OUT: u32 = 1;
export const QF_DATA_IN: u32 = 2;

export const QCQ_BYTES: u32 = 64;
export const QCQ_TAG: u32 = 0; // u32
export const QCQ_STATUS: u32 = 4; // u8: SCSI status
export const QCQ_SENSE_LEN: u32 = 5; // u8
export const QCQ_FLAGS: u32 = 6; // u16, RSPF_*
export const QCQ_RESIDUAL: u32 = 8; // u32
export const QCQ_TRANSFERRED: u32 = 12; // u32: data bytes moved
export const QCQ_SENSE: u32 = 16; // up to 48 bytes

// ---- Trace -------------------------------------------------------------------------------------
export const TRACE_BYTES: u32 = 32;
export const TR_TYPE: u32 = 0; // u16, TRACE_*
export const TR_IOP: u32 = 2; // u8
export const TR_FLAGS: u32 = 3; // u8
export const TR_SEQ: u32 = 4; // u32: per-IOP sequence number, so a reader can see drops
export const TR_TIME_NS: u32 = 8; // f64
export const TR_A: u32 = 16; // u32 x 4, meaning by type (docs/hal.md)
export const TR_B: u32 = 20;
export const TR_C: u32 = 24;
export const TR_D: u32 = 28;

export const TRACE_BOOT: u32 = 1; // a: role, b: index, c: recovered dirty slots
export const TRACE_COMMAND: u32 = 2; // a: port << 24 | session << 16 | lun, b: opcode << 24 | status << 16 | sense key << 8 | asc, c: blocks, d: latency in microseconds
export const TRACE_STAGE: u32 = 3; // a: medium, b: sector lo, c: sectors, d: status
export const TRACE_DESTAGE: u32 = 4; // a: medium, b: sector lo, c: sectors, d: status
export const TRACE_FRAME_ERROR: u32 = 5; // a: port << 16 | session, b: FERR_*, c: tag
export const TRACE_SESSION: u32 = 6; // a: port << 16 | session, b: 1 open / 0 closed, c: commands aborted
export const TRACE_VOLUME: u32 = 7; // a: volume, b: 1 created / 0 deleted
export const TRACE_FLUSH: u32 = 8; // a: dirty slots left
export const TRACE_NV_DROPPED: u32 = 9; // recovery dropped a dirty sector whose NV data failed its CRC: a: volume, b: slot number, c: sector in the slot
export const TRACE_MEDIUM: u32 = 10; // a: medium, b: MEDS_* it went to, c: label generation
export const TRACE_LOGIN: u32 = 11; // a: port << 16 | session, b: status class << 8 | detail, c: session type (1 discovery, 2 normal) | header digest << 8 | data digest << 9, d: TSIH
export const TRACE_TASK_MGMT: u32 = 12; // a: port << 16 | session, b: function, c: response, d: tasks aborted
export const TRACE_PDU_ERROR: u32 = 13; // a: port << 16 | session, b: PERR_*, c: opcode, d: initiator task tag
export const TRACE_NBD_ERROR: u32 = 14; // a: port << 16 | session, b: NERR_*, c: option or request type, d: low 32 bits of the handle (or the bad value)

// ---- Harness control requests (MAP_CONTROL) ----------------------------------------------------
export const CTL_NONE: u32 = 0;
export const CTL_FLUSH: u32 = 1; // destage every dirty slot
export const CTL_SHUTDOWN: u32 = 2; // flush, then mark the NV image clean

// ---- Stats (u64 counters; per IOP, at MIOP_STATS) ---------------------------------------------
export const STATS_BYTES: u32 = 512;
export const STAT_POLLS: u32 = 0;
export const STAT_COMMANDS: u32 = 1;
export const STAT_READS: u32 = 2;
export const STAT_WRITES: u32 = 3;
export const STAT_READ_BYTES: u32 = 4;
export const STAT_WRITE_BYTES: u32 = 5;
export const STAT_READ_HITS: u32 = 6; // read commands served wholly from cache
export const STAT_READ_MISSES: u32 = 7;
export const STAT_ERRORS: u32 = 8; // commands ended with CHECK CONDITION
export const STAT_LATENCY_NS: u32 = 9; // sum of command latencies
export const STAT_FRAMES_RX: u32 = 10;
export const STAT_FRAMES_TX: u32 = 11;
export const STAT_FERR_BAD_CRC: u32 = 12;
export const STAT_FERR_TRUNCATED: u32 = 13;
export const STAT_FERR_OVERSIZE: u32 = 14;
export const STAT_FERR_UNKNOWN_TYPE: u32 = 15;
export const STAT_FERR_UNKNOWN_TAG: u32 = 16;
export const STAT_FERR_BAD_SOF: u32 = 17; // bytes skipped while hunting for a start of frame
export const STAT_FERR_PROTOCOL: u32 = 18; // well-formed frame that breaks the exchange rules
export const STAT_STAGES: u32 = 19;
export const STAT_DESTAGES: u32 = 20;
export const STAT_MEDIUM_ERRORS: u32 = 21;
export const STAT_NV_WRITES: u32 = 22;
export const STAT_BUSY: u32 = 23; // commands answered BUSY / TASK SET FULL
export const STAT_TRACE_DROPS: u32 = 24;
export const STAT_SESSIONS_OPENED: u32 = 25;
export const STAT_ABORTED: u32 = 26; // commands ended without a status: their session closed, or a task management function aborted them
export const STAT_FERR_WRONG_DESTINATION: u32 = 27; // frames addressed to another port
export const STAT_NV_ERRORS: u32 = 28; // NV completions with an error status (the NV file refused a write)
export const STAT_NV_REFUSED: u32 = 29; // writes and management changes refused while the NV file is failing
export const STAT_PINS: u32 = 30; // cache slots pinned by a command (a stage it waits for, a slot it reads)
export const STAT_PIN_WAITS: u32 = 31; // times a command found no slot to evict (all dirty, pinned or busy) and waited
export const STAT_MEDIA_FLUSHES: u32 = 32; // medium flushes (MOP_FLUSH) before NV clean records
export const STAT_NV_DROPPED: u32 = 33; // dirty sectors dropped at recovery: their NV data failed its CRC
export const STAT_PDUS_RX: u32 = 34; // iSCSI PDUs received
export const STAT_PDUS_TX: u32 = 35; // iSCSI PDUs sent
export const STAT_ISCSI_REJECTS: u32 = 36; // Reject PDUs sent
export const STAT_ISCSI_DIGEST_ERRORS: u32 = 37; // header or data digest mismatches
export const STAT_ISCSI_LOGINS: u32 = 38; // logins that reached full feature phase
export const STAT_ISCSI_LOGIN_FAILURES: u32 = 39; // logins answered with a failure status
export const STAT_ISCSI_DROPPED: u32 = 40; // PDUs dropped as the RFC says (CmdSN outside the window, data for no task, ...)
export const STAT_TASK_MGMT: u32 = 41; // task management functions performed
export const STAT_NBD_REQUESTS: u32 = 42; // NBD transmission requests received
export const STAT_NBD_ERRORS: u32 = 43; // NBD requests and options answered with an error (bad request, out of range, refused export)
export const STAT_NBD_DROPPED: u32 = 44; // NBD connections dropped for a protocol violation (bad magic, unknown client flags, ...)
export const STAT_ACCESS_DENIED: u32 = 45; // commands refused by a volume's access list (hidden LUN, write to a read-only one)
export const STAT_INIT_MARK_FAILURES: u32 = 46; // init map marks of a chunk's first destage whose NV write failed (the slot stays dirty)
export const STAT_DESTAGE_NV_HELD: u32 = 47; // first destages held dirty for the NV file (mark failed, or file degraded): the NV verdict, not a write error
export const STAT_THIN_FULL: u32 = 48; // writes refused because a thin volume's media had no chunk free (27h/07h)
export const STAT_SLOT_WAIT_EXPIRED: u32 = 49; // commands and copy segments failed for waiting longer than the slot-wait bound for a cache slot (0Bh/55h/01h, 0Ah/55h/01h)
export const STAT_COUNT: u32 = 50;

// ---- Boot errors (MAP_ERROR) -------------------------------------------------------------------
export const ERR_NONE: u32 = 0;
export const ERR_CONFIG_MAGIC: u32 = 1;
export const ERR_CONFIG_VERSION: u32 = 2;
export const ERR_IOP_COUNT: u32 = 3;
export const ERR_MEDIA_COUNT: u32 = 4;
export const ERR_PORT_COUNT: u32 = 5;
export const ERR_CACHE_SLOTS: u32 = 6;
export const ERR_MEMORY: u32 = 7; // the memory could not grow to the map's size
export const ERR_STATIC: u32 = 8; // the image's static data reaches past STATIC_LIMIT
export const ERR_NV_GEOMETRY: u32 = 9; // the NV image holds dirty data for another cache geometry
export const ERR_PORT: u32 = 10; // a port names a bad IOP or kind
export const ERR_ROLE: u32 = 11; // no disk IOP, or more than one
export const ERR_NOT_LAID_OUT: u32 = 12;
export const ERR_NV_VERSION: u32 = 13; // the NV image is of another version (MAP_ERROR_DETAIL: its version)
export const ERR_NV_CORRUPT: u32 = 14; // neither copy of the NV header is whole (CRC), and it is not blank
export const ERR_TAPE: u32 = 15; // the library's config is bad (MAP_ERROR_DETAIL: the tape device, or 0xFFFF for the library)

// ---- iSCSI PDU errors (TRACE_PDU_ERROR) ---------------------------------------------------------
export const PERR_HEADER_DIGEST: u32 = 1; // the connection is closed (ERL 0: the next PDU cannot be found)
export const PERR_DATA_DIGEST: u32 = 2; // Reject (data digest error)
export const PERR_OPCODE: u32 = 3; // Reject (command not supported)
export const PERR_FIELD: u32 = 4; // Reject (invalid PDU field)
export const PERR_PROTOCOL: u32 = 5; // Reject (protocol error)
export const PERR_OVERSIZE: u32 = 6; // a data segment beyond MaxRecvDataSegmentLength: Reject, bytes skipped
export const PERR_CMDSN: u32 = 7; // a command outside the CmdSN window: dropped
export const PERR_NO_TASK: u32 = 8; // Data-Out or NOP-Out for no task: dropped
export const PERR_TIMEOUT: u32 = 9; // a NOP-In unanswered, a CmdSN gap not filled: the connection is closed

// ---- Tape devices: a library's medium changer and its drives (docs/tape.md) ---------------------
// The library is attached to the array (the array is its FC-SCSI bridge, document 004 Fig. 9):
// each device is its own logical unit on every port, at the LUN the topology gives (>= 256, so it
// never meets the volume map). The binding (hal/tape/) is the mechanism: it keeps the cartridges
// as AWS tape images, moves them, and reports what its sensors see; the firmware is the SCSI
// target (SSC-3, SMC-3). Zero tape devices in the config block means no library.
export const MAX_TAPE_DEVICES: u32 = 16; // the changer and up to 15 drives
export const MAX_TAPE_ELEMENTS: u32 = 1024; // transport + import/export + drives + slots
export const TAPE_LUN_MIN: u32 = 256;
export const CFG_TAPE: u32 = 0x6000; // the library's config
export const CTP_DEVICES: u32 = 0; // u32: tape devices (0: no library)
export const CTP_SLOTS: u32 = 4; // u16: storage elements
export const CTP_IE: u32 = 6; // u16: import/export elements
export const CTP_MAX_BLOCK: u32 = 8; // u32: the largest record a drive reads or writes (READ BLOCK LIMITS)
export const CTP_DENSITY: u32 = 12; // u8: density code the drives report (58h: LTO-5)
export const CFG_TAPE_TABLE: u32 = 0x6040; // MAX_TAPE_DEVICES entries
export const CFG_TAPE_BYTES: u32 = 64;
export const CTD_KIND: u32 = 0; // u8, TDK_*
export const CTD_LUN: u32 = 2; // u16
export const CTD_ELEMENT: u32 = 4; // u16: a drive's data transfer element address
export const CTD_NAME: u32 = 32; // 32 ASCII bytes
export const TDK_CHANGER: u32 = 1;
export const TDK_DRIVE: u32 = 2;
// Element addresses (SMC-3): the kinds in this order in the element table.
export const ELEM_TRANSPORT: u32 = 0x0000; // one medium transport element (the robot)
export const ELEM_IE_BASE: u32 = 0x0010;
export const ELEM_DRIVE_BASE: u32 = 0x0100;
export const ELEM_SLOT_BASE: u32 = 0x1000;
export const ELT_TRANSPORT: u32 = 1; // SMC element type codes
export const ELT_STORAGE: u32 = 2;
export const ELT_IE: u32 = 3;
export const ELT_DRIVE: u32 = 4;

// Map: where the tape rings and tables are (written by layout()).
export const MAP_TAPE_ELEMENTS: u32 = 120; // u32: the element table (TEL entries), written by the binding
export const MAP_TAPE_ELEMENT_COUNT: u32 = 124; // u32
export const MAP_TAPE_TABLE: u32 = 0x4000; // MAX_TAPE_DEVICES entries
export const MAP_TAPE_BYTES: u32 = 32;
export const MTD_SQ: u32 = 0; // ring of TSQ entries, firmware -> binding
export const MTD_CQ: u32 = 4; // ring of TCQ entries, binding -> firmware
export const MTD_STATE: u32 = 8; // u32: the firmware's state block of the device (TDS_*, firmware-private)
export const MTD_STATUS: u32 = 12; // u32 written by the binding: TDST_* | TDSF_* (what the drive's sensors say now)
export const MTD_POSITION: u32 = 16; // u32 written by the binding: logical object number (blocks and filemarks from BOT)
export const MTD_FILE: u32 = 20; // u32 written by the binding: logical file identifier (filemarks between BOT and the position)
export const MTD_CANCEL: u32 = 24; // u32 written by the firmware: a request whose holder went away; the binding leaves its buffer alone
export const MTD_EVENTS: u32 = 28; // u32 written by the binding: changer: operator accesses to the import/export elements so far
export const TDST_MASK: u32 = 0xFF;
export const TDST_EMPTY: u32 = 0; // no cartridge in the drive
export const TDST_UNLOADED: u32 = 1; // a cartridge is in the drive, not threaded (after UNLOAD): LOAD makes it ready
export const TDST_LOADING: u32 = 2; // threading (the load time of the timing model)
export const TDST_READY: u32 = 3;
export const TDST_OFFLINE: u32 = 4; // the drive is offline (a fault): nothing works
export const TDSF_WRITE_PROTECT: u32 = 0x100; // the cartridge's write-protect tab
export const TDSF_BOT: u32 = 0x200; // at the beginning of the tape
export const TDSF_EW: u32 = 0x400; // past the early warning point

// Element table entry (written by the binding: the library's inventory as its robot and barcode reader see it).
export const TEL_BYTES: u32 = 48;
export const TEL_ADDRESS: u32 = 0; // u16
export const TEL_TYPE: u32 = 2; // u8, ELT_*
export const TEL_FULL: u32 = 3; // u8: 1 when it holds a cartridge
export const TEL_SOURCE: u32 = 4; // u16: where the cartridge came from (0xFFFF: not known)
export const TEL_VOLTAG: u32 = 8; // 32 ASCII bytes, space padded: the barcode (SMC-3 primary volume tag)
export const TEL_VOLTAG_BYTES: u32 = 32;

// Tape requests: one in flight per device (the firmware's claim serialises its users).
export const TSQ_BYTES: u32 = 32;
export const TSQ_OP: u32 = 0; // u8, TOP_*
export const TSQ_ID: u32 = 4; // u32: matches the completion
export const TSQ_COUNT: u32 = 8; // i32: bytes (READ/WRITE), filemarks, or objects to space (negative: backwards)
export const TSQ_ADDR: u32 = 12; // u32: the buffer in common memory the binding moves record data to or from
export const TSQ_ARG: u32 = 16; // u32: READ/WRITE: fixed block size (0: one variable record); MOVE: source element
export const TSQ_ARG2: u32 = 20; // u32: MOVE: destination element
export const TOP_READ: u32 = 1; // variable: one record, at most COUNT bytes; fixed: COUNT/ARG records of ARG bytes
export const TOP_WRITE: u32 = 2; // variable: one record of COUNT bytes; fixed: COUNT/ARG records
export const TOP_WRITE_MARKS: u32 = 3; // COUNT tapemarks; ARG 1: then durable, as TOP_SYNC
export const TOP_SPACE_BLOCKS: u32 = 4; // COUNT records (stops after a tapemark, at EOD or BOT)
export const TOP_SPACE_MARKS: u32 = 5; // COUNT tapemarks (stops at EOD or BOT)
export const TOP_SPACE_EOD: u32 = 6; // to the end of data
export const TOP_REWIND: u32 = 7;
export const TOP_LOAD: u32 = 8; // thread the cartridge in the drive; position at BOT
export const TOP_UNLOAD: u32 = 9; // rewind and unthread; the cartridge stays in the drive for the robot
export const TOP_ERASE: u32 = 10; // end of data at the current position (what followed is gone)
export const TOP_LOCATE: u32 = 11; // COUNT 0: to logical object ARG (ARG2: its high 32 bits); 1: to the first object of logical file ARG
export const TOP_SYNC: u32 = 12; // what was written is made durable (fdatasync): a WRITE FILEMARKS with IMMED=0
export const TOP_MOVE: u32 = 16; // changer: move the cartridge at ARG to ARG2
export const TOP_INVENTORY: u32 = 17; // changer: read every barcode again (INITIALIZE ELEMENT STATUS)
export const TCQ_BYTES: u32 = 32;
export const TCQ_ID: u32 = 0; // u32
export const TCQ_STATUS: u32 = 4; // u16, TST_*
export const TCQ_FLAGS: u32 = 6; // u16: TDSF_* >> 8 after the operation (EW, BOT, WP)
export const TCQ_LENGTH: u32 = 8; // u32: READ: the length of the last record read (whole, also when longer than asked)
export const TCQ_DONE: u32 = 12; // u32: records read or written whole, tapemarks written, objects spaced
export const TCQ_POSITION: u32 = 16; // u32: logical object number after the operation
export const TST_OK: u32 = 0;
export const TST_TAPEMARK: u32 = 1; // a read or a space of records met a tapemark (position after it)
export const TST_EOD: u32 = 2; // a read or a space met the end of data (position at it)
export const TST_BOT: u32 = 3; // a backward space met the beginning of the tape
export const TST_EOM: u32 = 4; // a write met the physical end of the tape: nothing of the record was written
export const TST_WRITE_ERROR: u32 = 5; // the medium refused a write (a fault): the record was not written
export const TST_READ_ERROR: u32 = 6;
export const TST_NO_MEDIUM: u32 = 7; // no cartridge in the drive
export const TST_NOT_LOADED: u32 = 8; // a cartridge, not threaded: LOAD first
export const TST_OFFLINE: u32 = 9; // the drive is offline
export const TST_PROTECTED: u32 = 10; // the cartridge is write-protected
export const TST_SOURCE_EMPTY: u32 = 11; // MOVE: nothing at the source
export const TST_DEST_FULL: u32 = 12; // MOVE: the destination holds a cartridge
export const TST_BAD_ELEMENT: u32 = 13; // MOVE: no such element
export const TST_IO_ERROR: u32 = 15; // the image file could not be read or written (the binding logs the errno)
export const DB_TAPE_BASE: u32 = 0x3100; // + tape device index

// ---- NBD errors (TRACE_NBD_ERROR) ----------------------------------------------------------------
export const NERR_CLIENT_FLAGS: u32 = 1; // client flags with unknown bits, or without FIXED_NEWSTYLE: the connection is closed
export const NERR_OPTION_MAGIC: u32 = 2; // an option without IHAVEOPT: closed (the next option cannot be found)
export const NERR_REQUEST_MAGIC: u32 = 3; // a request without NBD_REQUEST_MAGIC: closed
export const NERR_OPTION: u32 = 4; // an option answered with an error (unknown, invalid, too big, unknown export)
export const NERR_EXPORT_NAME: u32 = 5; // NBD_OPT_EXPORT_NAME for no export this client may use: closed, as proto.md says
export const NERR_REQUEST: u32 = 6; // a request answered with an error before it ran (bad flags, type, range, alignment, size)
export const NERR_READ_FAILED: u32 = 7; // a simple-reply read failed after its data began: closed, as proto.md says

// ---- Links between nodes: arrays and relays (docs/remote.md) -------------------------------------
// A link end is a queue pair per IOP that speaks on it: on an array, a port of kind PORT_LINK with
// one session (SES_RX, SES_TX are entry rings of LINK_ENTRY_BYTES); on a relay, the relay's own
// link table. The binding (hal/link.ts) moves whole packets: it reads LPK_DST_QUEUE and LPK_LENGTH,
// nothing else, and delivers to the rx ring of the peer's queue LPK_DST_QUEUE.
export const PORT_LINK: u32 = 5;
export const LINK_HEADER_BYTES: u32 = 64;
export const LINK_PAYLOAD_BYTES: u32 = 8192;
export const LINK_ENTRY_BYTES: u32 = LINK_HEADER_BYTES + LINK_PAYLOAD_BYTES;
export const LINK_RING_ENTRIES: u32 = 64;
export const LPK_MAGIC_VALUE: u32 = 0x4C53; // "SL"
export const LPK_MAGIC: u32 = 0; // u16
export const LPK_TYPE: u32 = 2; // u8, LT_*
export const LPK_FLAGS: u32 = 3; // u8, LF_*
export const LPK_SRC_NODE: u32 = 4; // u16: node number (topology order: arrays, then relays)
export const LPK_DST_NODE: u32 = 6; // u16
export const LPK_SRC_QUEUE: u32 = 8; // u8
export const LPK_DST_QUEUE: u32 = 9; // u8
export const LPK_STATUS: u32 = 10; // u8: RECEIVED: SCSI status
export const LPK_SENSE: u32 = 11; // u8 x 3: key, ASC, ASCQ
export const LPK_LENGTH: u32 = 14; // u16: payload bytes
export const LPK_CMD_ID: u32 = 16; // u32: command identifier (the issuer's, unique per srcNode/srcQueue while it lives)
export const LPK_ISSUING_ID: u32 = 20; // u32: per remote pair, +1 per command issued (003 [0178])
export const LPK_SYNC_ID: u32 = 24; // u32: per pair, changes at each restart enabling point (003 [0177])
export const LPK_OFFSET: u32 = 28; // u32: DATA: byte offset in the command's data; READY: first byte wanted
export const LPK_TOTAL: u32 = 32; // u32: WRITE: data bytes; READY: bytes wanted from LPK_OFFSET
export const LPK_LBA: u32 = 36; // u64 (unaligned): WRITE: first block on the target volume
export const LPK_ORIGIN: u32 = 44; // u16: the storage unit that issued the command (relays keep it)
export const LPK_ORIGIN_QUEUE: u32 = 46; // u8
export const LPK_OP: u32 = 47; // u8: CONTROL: LOP_*
export const LPK_VOLUME: u32 = 48; // 12 bytes: target volume name, NUL padded
export const LPK_VOLUME_BYTES: u32 = 12;
export const LPK_CRC: u32 = 60; // u32: CRC-32C of header (this field 0) and payload
export const LT_WRITE: u32 = 1; // a command: write LPK_TOTAL bytes at LPK_LBA of LPK_VOLUME
export const LT_READY: u32 = 2; // completion of preparation: send [OFFSET, OFFSET + TOTAL)
export const LT_DATA: u32 = 3;
export const LT_RECEIVED: u32 = 4; // completion of reception (status)
export const LT_FORWARDED: u32 = 5; // relay -> origin: the next hop acknowledged it (S129)
export const LF_LAST: u32 = 1;
export const LF_MIRROR: u32 = 2; // a host write (embodiment 3), not a copy command's block (1)
export const LF_REDUNDANT: u32 = 8; // a redundancy-processed command and its parts (embodiments 5, 6; remote/redundancy.ts)
export const LF_DELAYED: u32 = 32; // (16 is LF_STORED) a delay write (embodiment 7): the standby holds it until its sync ID's reflecting command (remote/standby.ts)
export const LF_SNAPSHOT: u32 = 64; // with LF_DELAYED: a write or (LOP_REFLECT) snapshot forming command of a snapshot pair (embodiment 8, remote/snaplink.ts)
export const LOP_NONE: u32 = 0; // a WRITE that carries data
export const LOP_CREATE: u32 = 1; // a WRITE of no data: make the target volume the secondary of the origin's pair (LPK_ISSUING_ID: the last issuing ID before it)
export const LOP_DELETE: u32 = 2; // a WRITE of no data: the origin deleted the pair; the secondary's record goes
export const LOP_REFLECT: u32 = 3; // a WRITE of no data: the delay data reflecting command of LPK_SYNC_ID at a restart enabling point (embodiment 7, S440/S460)
// The array's end of links (docs/remote.md, "The array's link unit"). A PORT_LINK port is one queue
// of one link on one channel IOP, with one session whose SES_RX and SES_TX are entry rings of
// LINK_RING_ENTRIES x LINK_ENTRY_BYTES. Its config entry reuses the ring-size fields:
export const CPORT_LINK_INDEX: u32 = 8; // u32 (PORT_LINK): the link's index in the topology (the routes name links by it)
export const CPORT_LINK_QUEUE: u32 = 12; // u32 (PORT_LINK): this end's queue number on the link (LPK_SRC_QUEUE)
export const CPORT_LINK_PEER: u32 = 16; // u32 (PORT_LINK): the node at the link's other end + 1 (0: not said); the redundancy unit sends a node's parts only on links that reach it
export const CFG_REMOTE: u32 = 0x7000; // the array's place among the linked nodes
export const MAP_REMOTE_TABLE: u32 = 152; // u32: the remote pair table (remote/pair.ts), REMOTE_PAIRS_MAX records of RPR_BYTES (144 is thinmap.ts's MAPX_THIN)
export const REMOTE_PAIRS_MAX: u32 = 16;
export const RPR_BYTES: u32 = 256; // 128 to NV version 8; grown in 9 for the route (embodiment 4) after redundancy's fields (5, 6), with room for more
export const RPR_USED: u32 = 0; // u8
export const RPR_STATE: u32 = 2; // u8: RS_* (remote/pair.ts)
export const RPR_IN_FLIGHT: u32 = 28; // u32: commands the pair has in flight
// What the relays next to the array report (written by the harness's link binding each round; RELAY
// STATUS answers it: a relay has no SCSI port of its own).
export const MAP_RELAY_COUNT: u32 = 148; // u32: records in MAP_RELAY_TABLE
export const MAP_RELAY_TABLE: u32 = 0x3840; // RELAY_STATUS_MAX records of RLS_BYTES
export const RELAY_STATUS_MAX: u32 = 16;
export const RLS_BYTES: u32 = 64;
export const RLS_NODE: u32 = 0; // u16
export const RLS_MODE: u32 = 2; // u8: 0 store and forward, 1 cut-through
export const RLS_STATE: u32 = 3; // u8: 1 running, 2 killed
export const RLS_ACTIVE: u32 = 4; // u32: commands held now
export const RLS_BUFFER: u32 = 8; // u32: buffer memory bytes
export const RLS_BUFFER_USED: u32 = 12; // u32
export const RLS_JOBS: u32 = 16; // u64: commands taken in
export const RLS_FORWARDED: u32 = 24; // u64
export const RLS_BYTES_IN: u32 = 32; // u64: data bytes received
export const RLS_FAILED: u32 = 40; // u32
export const RLS_RETRIES: u32 = 44; // u32
export const RLS_DUPLICATES: u32 = 48; // u32
export const RLS_NO_BUFFER: u32 = 52; // u32
export const RLS_BAD: u32 = 56; // u32
export const CRM_NODE: u32 = 0; // u16: this array's node number (topology order: arrays, then relays)
export const CRM_LINKED: u32 = 2; // u16: 1 when the array ends a link
export const CRM_ROUTES: u32 = 64; // RELAY_MAX_NODES x u16: for each node, the link index (topology) to send on toward it; 0xFFFF: none
// Trace records of remote copy (numbered apart from the others so that branches adding records meet no clash).
export const TRACE_REMOTE_SEND: u32 = 40; // a: pair, b: cmdId, c: issuingId, d: bytes (a WRITE sent toward the secondary)
export const TRACE_REMOTE_ACK: u32 = 41; // a: pair, b: cmdId, c: issuingId, d: 1 RECEIVED from the first hop, 2 FORWARDED by the relay, | status << 8
export const TRACE_REMOTE_APPLY: u32 = 42; // a: origin node << 16 | pair on this array, b: cmdId, c: issuingId, d: status (the secondary applied a write)
export const TRACE_REMOTE_STATE: u32 = 43; // a: pair, b: RS_* it went to, c: RSR_* reason, d: issuing ID then
export const TRACE_REMOTE_DELAY: u32 = 44; // a: pair, b: sync ID, c: issuing ID, d: 0 held by the standby unit (S425), else the SYNC_* refusal negated
export const TRACE_REMOTE_REFLECT: u32 = 45; // a: pair, b: first block, c: issuing ID of the write, d: blocks (a run written by a reflecting command, S464)
export const TRACE_REMOTE_DISCARD: u32 = 46; // a: pair, b: held writes discarded, c: issuing ID of the last restart point, d: its sync ID (failover, S482)
// Relay memory map (build/relay.wasm): config at CONFIG_ADDR, map at MAP_ADDR, as an array's.
export const RCFG_MAGIC_VALUE: u32 = 0x59414C52; // "RLAY"
export const RCFG_MAGIC: u32 = 0;
export const RCFG_NODE: u32 = 4; // u16: the relay's node number
export const RCFG_LINKS: u32 = 8; // u32: links it ends
export const RCFG_BUFFER_BYTES: u32 = 12; // u32: buffer memory 152
export const RCFG_FLAGS: u32 = 16; // u32: RCF_*
export const RCFG_ROUTES: u32 = 64; // 64 x u16: for each destination node, the link index to reach it (0xFFFF: none)
export const RCF_CUT_THROUGH: u32 = 1; // embodiment 2
export const RMAP_LINKS: u32 = 0; // per link: u32 rx ring, u32 tx ring (8 bytes each), 16 links at most
export const RMAP_STATS: u32 = 128; // u64 x 16: RSTAT_*
export const RMAP_STATE: u32 = 256; // u32: MAPS_*
export const RELAY_MAX_LINKS: u32 = 16;
export const RELAY_MAX_NODES: u32 = 64;
export const RSTAT_JOBS: u32 = 0; // commands taken in
export const RSTAT_FORWARDED: u32 = 1; // commands the next hop acknowledged
export const RSTAT_ACTIVE: u32 = 2; // commands held now (a gauge)
export const RSTAT_BYTES: u32 = 3; // data bytes received
export const RSTAT_DUPLICATES: u32 = 4; // repeated WRITEs answered again, not started twice
export const RSTAT_BAD: u32 = 5; // packets dropped: CRC, magic, length, unknown command
export const RSTAT_NO_BUFFER: u32 = 6; // WRITEs left unanswered for lack of buffer memory (the sender repeats)
export const RSTAT_FAILED: u32 = 7; // commands given up after their retries downstream
export const RSTAT_RETRIES: u32 = 8; // packets sent again after a timeout
export const RSTAT_BUFFER_USED: u32 = 9; // bytes of buffer memory held now (a gauge)
export const DB_LINK_TX_BASE: u32 = 0x3200; // relay: + link index (tx ring)
export const RCFG_TIMEOUT_US: u32 = 20; // u32: a wait for the next hop (READY, RECEIVED) or for data is repeated after this
export const RCFG_RETRIES: u32 = 24; // u32: repeats before a command is given up
export const RMAP_WAKE_AT_NS: u32 = 264; // f64: the relay wants poll() again at this time (0: no timer)
export const RMAP_JOBS: u32 = 272; // u32: address of the job table
export const RMAP_JOB_COUNT: u32 = 276; // u32
// Embodiment 4's relays with non-volatile buffer memory (docs/remote.md, "Several relays"; remote-relays took these).
export const RCF_NV: u32 = 2; // the buffer memory and the job table are non-volatile (the harness keeps them in the relay's `nv` file)
export const RCF_FORWARD_LATER: u32 = 4; // hold every command in NV; forward after RCFG_HOLD_US (or a flush)
export const RCF_FORWARD_THRESHOLD: u32 = 8; // hold new commands while the bytes being forwarded reach RCFG_THRESHOLD_BYTES
export const RCFG_HOLD_US: u32 = 28; // u32: forward later: how long a command is held after it is stored
export const RCFG_THRESHOLD_BYTES: u32 = 32; // u32: forward threshold: downstream bytes in progress at or above which new commands wait
export const RMAP_NV_ADDR: u32 = 280; // u32: the non-volatile part of the relay's memory: job table, buffer map, buffer
export const RMAP_NV_BYTES: u32 = 284; // u32
export const RMAP_FLUSH: u32 = 288; // u32: set by the harness: forward every held command now (a flush); the relay clears it
export const RMAP_SEQ: u32 = 292; // u32: the last arrival number given to a job (held commands go in arrival order)
export const RSTAT_HELD: u32 = 10; // commands stored in NV waiting to be forwarded (a gauge)
export const RSTAT_RECOVERED: u32 = 11; // commands found in NV at a restart
export const RLS_HELD: u32 = 60; // u32 (RELAY STATUS): commands held in NV waiting to be forwarded
export const LF_STORED: u32 = 16; // RECEIVED from a relay with non-volatile buffer memory: it holds the command and forwards it itself
// Trace records that follow one remote write step by step (docs/remote.md, "Trace"; trace10 took these).
export const TRACE_REMOTE_RELAY: u32 = 47; // from a relay's own ring: a: RTS_* step << 24 | origin << 16 | the hop's node << 8 | SCSI status, b: the upstream's cmdId, c: issuing ID, d: the relay's own cmdId downstream
export const TRACE_REMOTE_REBUILT: u32 = 48; // a redundancy-processed block whole at the receiver (S325): a: sender node << 16 | m << 8 | N, b: cmdId, c: issuing ID, d: mask of the parts that came (data parts not in it were computed)
export const TRACE_REMOTE_DROPPED: u32 = 49; // a: sender node << 16 | RDROP_* << 8 | part, b: cmdId, c: issuing ID, d: pair on this array (0xFFFF: none known)
export const TRACE_REMOTE_DISCARDED: u32 = 50; // one held write discarded at failover (S482): a: pair, b: its sync ID, c: its issuing ID, d: bytes
export const TRACE_REMOTE_PARTS: u32 = 51; // a redundancy-processed send's identity on the wire: a: pair, b: cmdId (as remoteSend), c: issuing ID, d: the redundancy unit's command identifier its parts carry
// Steps of TRACE_REMOTE_RELAY.
export const RTS_STORED: u32 = 1; // all its data in the relay's buffer memory; RECEIVED upstream (S126/S148)
export const RTS_HELD: u32 = 2; // stored in NV, held by the forward policy (later, threshold: [0115]-[0117])
export const RTS_FORWARD: u32 = 3; // its WRITE sent to the next hop (S122/S142; the first time, or once released)
export const RTS_DONE: u32 = 4; // the next hop's RECEIVED (S129/S149), with its status; FORWARDED upstream
export const RTS_FAILED: u32 = 5; // given up after the retries downstream (status: ABORTED COMMAND)
export const RTS_DUPLICATE: u32 = 6; // a repeated WRITE from upstream, answered again, not started twice
export const RTS_RECOVERED: u32 = 7; // taken back from the NV file after a restart
// Reasons of TRACE_REMOTE_DROPPED.
export const RDROP_SURPLUS: u32 = 1; // a part that came after its block was rebuilt (or its command ended) ([0136])
export const RDROP_PART_AGAIN: u32 = 2; // a part that came twice
export const RDROP_WRITE_AGAIN: u32 = 3; // a redundancy-processed WRITE that came again (a copy on another network)
export const RDROP_APPLIED: u32 = 4; // a copy of a write whose issuing ID is applied: answered again, not applied ([0112])
export const RDROP_APPLYING: u32 = 5; // a copy of a write whose issuing ID is being applied from another copy: left unanswered
// The relay's trace ring (after RMAP_SEQ) and its drops.
export const RMAP_TRACE_RING: u32 = 296; // u32: the relay's trace ring (entries of TRACE_BYTES)
export const RMAP_TRACE_SEQ: u32 = 300; // u32: the relay's trace sequence number
export const RSTAT_TRACE_DROPS: u32 = 12; // trace records lost to a full ring
export const RELAY_TRACE_ENTRIES: u32 = 256;
