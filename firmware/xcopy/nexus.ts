// Is an I_T nexus still there? A copy's results belong to the nexus that sent its list (SPC-3:
// RECEIVE COPY RESULTS names a list identifier of the same I_T nexus); a session that closed, or
// reopened under a new generation, is another nexus.
import { SES_STATE, SES_GENERATION, SESS_OPEN } from "../abi";
import { sessionDesc } from "../channel";

export function sessionAlive(port: u32, session: u32, gen: u32): bool {
  const d = sessionDesc(port, session);
  return atomic.load<u32>(d + SES_STATE) == SESS_OPEN && atomic.load<u32>(d + SES_GENERATION) == gen;
}

/** The generation of the session a command came through now (the binding bumps it at every open). */
export function nexusGeneration(port: u32, session: u32): u32 {
  return atomic.load<u32>(sessionDesc(port, session) + SES_GENERATION);
}
