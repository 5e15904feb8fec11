// What a reset of a logical unit (LOGICAL UNIT RESET, TARGET WARM/COLD RESET) does beyond ending
// its tasks, which the transport's task management has done: its RESERVE (6)/(10) reservation is
// released (persistent reservations stay, SPC-5 5.14.12) and every other I_T nexus to it gets a
// unit attention, 29h/03h BUS DEVICE RESET FUNCTION OCCURRED (SAM-5 6.3.3).
import { reservationsReset } from "./pr";
import { uaAllNexuses, UA_RESET } from "./ua";

export function logicalUnitReset(v: u32, port: u32, s: u32): void {
  reservationsReset(v);
  uaAllNexuses(v, UA_RESET, port, s);
}
