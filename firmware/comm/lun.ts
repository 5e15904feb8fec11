// SAM-5 logical unit numbers as they come in a command (framed CMD payload, iSCSI BHS): 8 bytes,
// single level. Peripheral (00b) or flat (01b) addressing; anything else is NO_LUN.
export const NO_LUN: u32 = 0xFFFF;

export function decodeLun(p: usize): u32 {
  const b0 = <u32>load<u8>(p);
  const b1 = <u32>load<u8>(p + 1);
  for (let i: u32 = 2; i < 8; i++) if (load<u8>(p + i) != 0) return NO_LUN;
  if ((b0 >> 6) == 0) return b0 == 0 ? b1 : NO_LUN;
  if ((b0 >> 6) == 1) return ((b0 & 0x3F) << 8) | b1;
  return NO_LUN;
}
