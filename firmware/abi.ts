// The HAL ABI: every address, offset, size and code shared between the firmware and hal/.
//
// This one file is compiled by asc into the firmware and imported by the TypeScript side
// (hal/abi.ts re-exports it), so the two sides cannot drift. It holds only untyped integer
// constants, which both languages read the same way: AssemblyScript inlines them as i32.
// docs/hal.md explains each structure; the tables here are the normative layout.
//
// Conventions: all structures in common memory are little-endian; an address is a byte offset
// into the controller's shared WebAssembly memory; sizes are bytes unless the name says otherwise.

export const ABI_VERSION = 1;

// ---- Fixed addresses -------------------------------------------------------------------------
// [0, STATIC_LIMIT): the firmware image's static data (tables, constant strings).
// The config block is written by the harness before layout(); the map header by layout().
export const STATIC_LIMIT = 0x100000;
export const CONFIG_ADDR = 0x100000;
export const CONFIG_BYTES = 0x10000;
export const MAP_ADDR = 0x110000;
export const MAP_BYTES = 0x10000;
export const REGIONS_ADDR = 0x120000;
export const PAGE_BYTES = 65536;
export const REGION_ALIGN = 4096;

// ---- Limits ----------------------------------------------------------------------------------
export const MAX_IOPS = 16;
export const MAX_MEDIA = 64;
export const MAX_PORTS = 16;
export const MAX_SESSIONS = 16; // per port
export const MAX_VOLUMES = 1024;
export const MAX_LUNS = 256; // per port, LUN 0 is the command device
export const SECTOR_BYTES = 512;
export const SLOT_BYTES = 65536; // one cache slot; also the allocation unit ("chunk") of media
export const SLOT_SECTORS = 128;
export const SLOT_SHIFT = 16;
export const BUFFER_CHUNK_BYTES = 65536; // one buffer-memory chunk of a channel IOP
export const MAX_CDB_BYTES = 32;
export const SENSE_BYTES = 18; // fixed-format sense data as sent

// ---- Config block (harness -> firmware, read-only after layout) -------------------------------
export const CONFIG_MAGIC = 0x46434253; // "SBCF"
export const CFG_MAGIC = 0;
export const CFG_VERSION = 4;
export const CFG_IOP_COUNT = 8;
export const CFG_MEDIA_COUNT = 12;
export const CFG_PORT_COUNT = 16;
export const CFG_CACHE_SLOTS = 20; // number of SLOT_BYTES cache slots
export const CFG_BUFFER_CHUNKS = 24; // buffer-memory chunks per channel IOP
export const CFG_DESTAGE_INTERVAL_US = 28; // disk IOP polls the cache directory this often
export const CFG_DESTAGE_AGE_US = 32; // a dirty slot younger than this waits (write coalescing) unless the cache is above the high mark
export const CFG_DIRTY_HIGH_PCT = 36; // above this share of dirty slots, destage without waiting for age
export const CFG_FLAGS = 40; // CFGF_*
export const CFG_SEED = 44;
export const CFG_TRACE_ENTRIES = 48; // power of two
export const CFG_CONTEXTS = 52; // command contexts per channel IOP
export const CFG_STAGE_DEPTH = 56; // medium requests the disk IOP keeps registered per medium at most
export const CFG_VENDOR = 64; // 8 ASCII bytes, space padded (T10 vendor identification)
export const CFG_PRODUCT = 72; // 16 ASCII bytes
export const CFG_REVISION = 88; // 4 ASCII bytes
export const CFG_SERIAL = 92; // 20 ASCII bytes: the array's serial number
export const CFG_DEVICE_ID = 112; // 16 bytes: NAA-6 identifier of the array (document 002: the device ID)
export const CFG_ARRAY_NAME = 128; // 32 ASCII bytes
export const CFGF_DETERMINISTIC = 1;

export const CFG_IOP_TABLE = 256; // MAX_IOPS entries
export const CFG_IOP_BYTES = 16;
export const CIOP_ROLE = 0; // u8, ROLE_*

export const CFG_MEDIA_TABLE = 512; // MAX_MEDIA entries
export const CFG_MEDIUM_BYTES = 64;
export const CMED_SECTORS_LO = 0; // u32 pair: medium size in SECTOR_BYTES sectors
export const CMED_SECTORS_HI = 4;
export const CMED_SCHEDULER = 8; // u8, SCHED_*
export const CMED_QUEUE_DEPTH = 9; // u8: requests submitted to the binding at once
export const CMED_FLAGS = 10; // u8
export const CMED_DEADLINE_READ_US = 12; // u32, deadline policy
export const CMED_DEADLINE_WRITE_US = 16; // u32
export const CMED_NAME = 32; // 32 ASCII bytes

export const CFG_PORT_TABLE = 0x1200; // MAX_PORTS entries
export const CFG_PORT_BYTES = 64;
export const CPORT_IOP = 0; // u8: index of the channel IOP that owns the port
export const CPORT_KIND = 1; // u8, PORT_*
export const CPORT_SESSIONS = 2; // u8: connections served at once
export const CPORT_ADDRESS = 4; // u16: the port's address in frame headers (destination of commands)
export const CPORT_RX_BYTES = 8; // u32: stream ports, receive ring bytes per session (power of two)
export const CPORT_TX_BYTES = 12; // u32: stream ports, transmit ring bytes per session (power of two)
export const CPORT_QUEUE_ENTRIES = 16; // u32: queue ports, submission/completion entries per session (power of two)
export const CPORT_DATA_BYTES = 20; // u32: queue ports, data area per session
export const CPORT_NAME = 32; // 32 ASCII bytes

export const ROLE_CHANNEL = 1;
export const ROLE_DISK = 2;

export const PORT_STREAM = 1; // framed byte stream: TCP, serial
export const PORT_QUEUE = 2; // queue pair in common memory: in-process initiators

export const SCHED_FIFO = 0;
export const SCHED_SSTF = 1;
export const SCHED_CLOOK = 2;
export const SCHED_DEADLINE = 3;

// ---- Map header (written by layout(), read by every IOP and the harness) -----------------------
export const MAP_MAGIC_VALUE = 0x504d4253; // "SBMP"
export const MAP_MAGIC = 0;
export const MAP_VERSION = 4;
export const MAP_TOTAL_BYTES = 8; // end of the last region
export const MAP_STATE = 12; // MAPS_*
export const MAP_ERROR = 16; // ERR_* when MAP_STATE is MAPS_FAILED
export const MAP_NV_ADDR = 20; // the non-volatile region: the binding persists it to a file
export const MAP_NV_BYTES = 24;
export const MAP_TRACE_RING = 28; // trace ring (entry ring of TRACE_BYTES entries)
export const MAP_CONTROL = 32; // u32 written by the harness: CTL_*
export const MAP_CONTROL_SEQ = 36; // u32 bumped by the harness with each request
export const MAP_CONTROL_DONE = 40; // u32: firmware copies CONTROL_SEQ here when the request is done
export const MAP_CACHE_STATE = 44; // shared cache control block (firmware-private layout)
export const MAP_ERROR_DETAIL = 48; // u32: which entry the error concerns (medium, port, ...)
export const MAP_IOP_TABLE = 256; // MAX_IOPS entries
export const MAP_IOP_BYTES = 64;
export const MIOP_PRIVATE = 0; // u32: the IOP's private area
export const MIOP_PRIVATE_BYTES = 4;
export const MIOP_NV_SQ = 8; // ring: NV persistence requests of this IOP
export const MIOP_NV_CQ = 12;
export const MIOP_TO_DISK = 16; // channel IOPs: mailbox ring to the disk IOP
export const MIOP_FROM_DISK = 20; // channel IOPs: mailbox ring from the disk IOP
export const MIOP_STATS = 24; // u32: this IOP's stats block (STAT_* counters, u64 each)
export const MIOP_WAKE_AT_NS = 32; // f64: the IOP wants poll() again at this time even when idle (0: no timer)
export const MAP_MEDIA_TABLE = 1280; // MAX_MEDIA entries
export const MAP_MEDIUM_BYTES = 16;
export const MMED_SQ = 0; // ring of MSQ entries, disk IOP -> binding
export const MMED_CQ = 4; // ring of MCQ entries, binding -> disk IOP
export const MAP_PORT_TABLE = 2304; // MAX_PORTS entries
export const MAP_PORT_BYTES = 16;
export const MPORT_SESSIONS_ADDR = 0; // u32: array of CPORT_SESSIONS session descriptors
export const MPORT_SESSIONS = 4;

export const MAPS_NONE = 0;
export const MAPS_LAID_OUT = 1;
export const MAPS_BOOTED = 2;
export const MAPS_FAILED = 3;

// ---- Session descriptor (one per connection slot of a port) -----------------------------------
export const SESSION_BYTES = 64;
export const SES_STATE = 0; // u32, SESS_*: written by the binding (OPEN, CLOSING) and the firmware (CLOSED)
export const SES_GENERATION = 4; // u32: the binding bumps it on every open
export const SES_FW_GENERATION = 8; // u32: the generation the firmware has reset its state for
export const SES_RX = 12; // stream: byte ring binding -> firmware
export const SES_TX = 16; // stream: byte ring firmware -> binding
export const SES_SQ = 20; // queue: QSQ entries, binding -> firmware
export const SES_CQ = 24; // queue: QCQ entries, firmware -> binding
export const SES_DATA = 28; // queue: data area the initiator's buffers live in
export const SES_DATA_BYTES = 32;
export const SES_PEER = 36; // u32: stream: the peer's frame address learnt from its first frame

export const SESS_CLOSED = 0;
export const SESS_OPEN = 1;
export const SESS_CLOSING = 2;

// ---- Rings -------------------------------------------------------------------------------------
// Single producer, single consumer. head and tail are free-running u32 indices (entries, or bytes
// for a byte ring), each on its own cache line; capacity is a power of two. The producer writes the
// entry, then stores tail; the consumer reads tail, consumes, then stores head. Both use atomics.
export const RING_HEADER_BYTES = 256;
export const RING_HEAD = 0;
export const RING_TAIL = 64;
export const RING_CAPACITY = 128; // entries (bytes for a byte ring)
export const RING_ENTRY_BYTES = 132; // 1 for a byte ring
export const RING_DOORBELL = 136; // the id the producer passes to hal.doorbell (0: none)
export const RING_DATA = 256;

// Doorbell ids.
export const DB_NONE = 0;
export const DB_NV_BASE = 0x10; // + IOP index
export const DB_MEDIUM_BASE = 0x100; // + medium index
export const DB_TX_BASE = 0x1000; // + port * MAX_SESSIONS + session (stream ports: tx ring)
export const DB_CQ_BASE = 0x2000; // + port * MAX_SESSIONS + session (queue ports: completion ring)
export const DB_TRACE = 0x3000;

// ---- Medium requests ---------------------------------------------------------------------------
export const MSQ_BYTES = 32;
export const MSQ_OPCODE = 0; // u8, MOP_*
export const MSQ_FLAGS = 1; // u8, MSQF_*
export const MSQ_ID = 4; // u32: matches the completion
export const MSQ_LBA_LO = 8; // u32 pair: first sector on the medium
export const MSQ_LBA_HI = 12;
export const MSQ_SECTORS = 16; // u32
export const MSQ_ADDR = 20; // u32: the buffer in common memory the binding moves the data to or from
export const MOP_READ = 1;
export const MOP_WRITE = 2;
export const MOP_FLUSH = 3; // make earlier writes durable on the medium
export const MSQF_FUA = 1;

export const MCQ_BYTES = 16;
export const MCQ_ID = 0; // u32
export const MCQ_STATUS = 4; // u16, MST_*
export const MCQ_ERR_LBA_LO = 8; // u32 pair: first failing sector (MST_READ_ERROR, MST_WRITE_ERROR)
export const MCQ_ERR_LBA_HI = 12;
export const MST_OK = 0;
export const MST_READ_ERROR = 1;
export const MST_WRITE_ERROR = 2;
export const MST_NOT_READY = 3; // dead or absent medium
export const MST_RANGE = 4; // beyond the end of the medium

// ---- Non-volatile memory requests --------------------------------------------------------------
// The binding copies [addr, addr + bytes) of common memory to the NV file at offset addr - MAP_NV_ADDR.
export const NSQ_BYTES = 16;
export const NSQ_ID = 0;
export const NSQ_ADDR = 4;
export const NSQ_BYTES_FIELD = 8;
export const NSQ_FLAGS = 12; // NSQF_*
export const NSQF_SYNC = 1; // also fsync the file
export const NCQ_BYTES = 8;
export const NCQ_ID = 0;
export const NCQ_STATUS = 4; // 0 ok, else an errno-like code

// ---- Queue-port command entries (in-process initiators) ----------------------------------------
export const QSQ_BYTES = 64;
export const QSQ_TAG = 0; // u32
export const QSQ_LUN = 4; // u16
export const QSQ_CDB_LEN = 6; // u8
export const QSQ_FLAGS = 7; // u8, QF_*
export const QSQ_DATA_ADDR = 8; // u32: buffer in the session's data area
export const QSQ_DATA_LEN = 12; // u32: expected data transfer length
export const QSQ_CDB = 16; // MAX_CDB_BYTES bytes
export const QSQ_TASK_ATTR = 48; // u8
export const QF_DATA_OUT = 1;
export const QF_DATA_IN = 2;

export const QCQ_BYTES = 64;
export const QCQ_TAG = 0; // u32
export const QCQ_STATUS = 4; // u8: SCSI status
export const QCQ_SENSE_LEN = 5; // u8
export const QCQ_FLAGS = 6; // u16, RSPF_*
export const QCQ_RESIDUAL = 8; // u32
export const QCQ_TRANSFERRED = 12; // u32: data bytes moved
export const QCQ_SENSE = 16; // up to 48 bytes

// ---- Trace -------------------------------------------------------------------------------------
export const TRACE_BYTES = 32;
export const TR_TYPE = 0; // u16, TRACE_*
export const TR_IOP = 2; // u8
export const TR_FLAGS = 3; // u8
export const TR_SEQ = 4; // u32: per-IOP sequence number, so a reader can see drops
export const TR_TIME_NS = 8; // f64
export const TR_A = 16; // u32 x 4, meaning by type (docs/hal.md)
export const TR_B = 20;
export const TR_C = 24;
export const TR_D = 28;

export const TRACE_BOOT = 1; // a: role, b: index, c: recovered dirty slots
export const TRACE_COMMAND = 2; // a: port << 24 | session << 16 | lun, b: opcode << 24 | status << 16 | sense key << 8 | asc, c: blocks, d: latency in microseconds
export const TRACE_STAGE = 3; // a: medium, b: sector lo, c: sectors, d: status
export const TRACE_DESTAGE = 4; // a: medium, b: sector lo, c: sectors, d: status
export const TRACE_FRAME_ERROR = 5; // a: port << 16 | session, b: FERR_*, c: tag
export const TRACE_SESSION = 6; // a: port << 16 | session, b: 1 open / 0 closed, c: commands aborted
export const TRACE_VOLUME = 7; // a: volume, b: 1 created / 0 deleted
export const TRACE_FLUSH = 8; // a: dirty slots left

// ---- Harness control requests (MAP_CONTROL) ----------------------------------------------------
export const CTL_NONE = 0;
export const CTL_FLUSH = 1; // destage every dirty slot
export const CTL_SHUTDOWN = 2; // flush, then mark the NV image clean

// ---- Stats (u64 counters; per IOP, at MIOP_STATS) ---------------------------------------------
export const STATS_BYTES = 512;
export const STAT_POLLS = 0;
export const STAT_COMMANDS = 1;
export const STAT_READS = 2;
export const STAT_WRITES = 3;
export const STAT_READ_BYTES = 4;
export const STAT_WRITE_BYTES = 5;
export const STAT_READ_HITS = 6; // read commands served wholly from cache
export const STAT_READ_MISSES = 7;
export const STAT_ERRORS = 8; // commands ended with CHECK CONDITION
export const STAT_LATENCY_NS = 9; // sum of command latencies
export const STAT_FRAMES_RX = 10;
export const STAT_FRAMES_TX = 11;
export const STAT_FERR_BAD_CRC = 12;
export const STAT_FERR_TRUNCATED = 13;
export const STAT_FERR_OVERSIZE = 14;
export const STAT_FERR_UNKNOWN_TYPE = 15;
export const STAT_FERR_UNKNOWN_TAG = 16;
export const STAT_FERR_BAD_SOF = 17; // bytes skipped while hunting for a start of frame
export const STAT_FERR_PROTOCOL = 18; // well-formed frame that breaks the exchange rules
export const STAT_STAGES = 19;
export const STAT_DESTAGES = 20;
export const STAT_MEDIUM_ERRORS = 21;
export const STAT_NV_WRITES = 22;
export const STAT_BUSY = 23; // commands answered BUSY / TASK SET FULL
export const STAT_TRACE_DROPS = 24;
export const STAT_SESSIONS_OPENED = 25;
export const STAT_ABORTED = 26; // commands dropped because their session closed
export const STAT_COUNT = 27;

// ---- Boot errors (MAP_ERROR) -------------------------------------------------------------------
export const ERR_NONE = 0;
export const ERR_CONFIG_MAGIC = 1;
export const ERR_CONFIG_VERSION = 2;
export const ERR_IOP_COUNT = 3;
export const ERR_MEDIA_COUNT = 4;
export const ERR_PORT_COUNT = 5;
export const ERR_CACHE_SLOTS = 6;
export const ERR_MEMORY = 7; // the memory could not grow to the map's size
export const ERR_STATIC = 8; // the image's static data reaches past STATIC_LIMIT
export const ERR_NV_GEOMETRY = 9; // the NV image holds dirty data for another cache geometry
export const ERR_PORT = 10; // a port names a bad IOP or kind
export const ERR_ROLE = 11; // no disk IOP, or more than one
export const ERR_NOT_LAID_OUT = 12;
