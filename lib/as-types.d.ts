// firmware/abi.ts is shared by the AssemblyScript firmware and the TypeScript side; its constants
// carry AssemblyScript integer types, which are plain numbers to TypeScript.
type u32 = number;
