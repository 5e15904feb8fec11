// Opening and closing a session slot of a port (docs/hal.md, Channels): shared by stream and queue
// bindings. The binding owns OPEN and CLOSING; the firmware answers CLOSING with CLOSED.
import * as A from '../abi';
import { CommonMemory } from '../memory';

export class SessionSlot {
  readonly desc: number;
  constructor(protected readonly mem: CommonMemory, readonly port: number, readonly index: number) {
    const sessions = mem.u32(A.MAP_ADDR + A.MAP_PORT_TABLE + port * A.MAP_PORT_BYTES + A.MPORT_SESSIONS_ADDR);
    this.desc = sessions + index * A.SESSION_BYTES;
  }

  get state(): number { return this.mem.load32(this.desc + A.SES_STATE); }
  /** Free for a new connection: closed by the firmware (or never opened). */
  get free(): boolean { return this.state === A.SESS_CLOSED; }
  ring(field: number): number { return this.mem.u32(this.desc + field); }
  /** Why the firmware asks for the connection to be closed (HANGUP_*), or HANGUP_NONE. */
  get hangupRequest(): number { return this.mem.load32(this.desc + A.SES_HANGUP); }

  /** Opens the slot: its rings are emptied first, while the firmware leaves them alone. */
  open(rings: Array<{ reset(): void }>, localAddress = '', peerAddress = ''): void {
    if (!this.free) throw new Error(`session ${this.port}.${this.index} is not closed`);
    for (const r of rings) r.reset();
    this.text(A.SES_LOCAL_ADDR, A.SES_LOCAL_ADDR_BYTES, localAddress);
    this.text(A.SES_PEER_ADDR, A.SES_PEER_ADDR_BYTES, peerAddress);
    this.mem.store32(this.desc + A.SES_HANGUP, A.HANGUP_NONE);
    this.mem.store32(this.desc + A.SES_GENERATION, this.mem.load32(this.desc + A.SES_GENERATION) + 1);
    this.mem.store32(this.desc + A.SES_STATE, A.SESS_OPEN);
  }

  /** A NUL-terminated text field of the descriptor. */
  private text(field: number, bytes: number, value: string): void {
    this.mem.u8.fill(0, this.desc + field, this.desc + field + bytes);
    this.mem.u8.set(Buffer.from(value.slice(0, bytes - 1), 'latin1'), this.desc + field);
  }

  /** Hangs up: the firmware drops the session's commands and marks the slot CLOSED. */
  hangUp(): void {
    if (this.state === A.SESS_OPEN) this.mem.store32(this.desc + A.SES_STATE, A.SESS_CLOSING);
  }
}
