// Bounds and overlap checks shared by the kernels.
//
// Every buffer argument is checked against the memory's current size before a kernel touches
// it, in u64 arithmetic so that ptr + bytes cannot wrap around 2^32. An output must also lie above
// the image's static data (__heap_base): a stray pointer (0, say) must not overwrite the kernel
// tables every IOP shares. A zero-length buffer is in bounds anywhere up to the end of the memory
// and overlaps nothing.

@inline export function memoryBytes(): u64 {
  return (<u64>memory.size()) << 16;
}

@inline export function inMemory(ptr: usize, bytes: u64): bool {
  return <u64>ptr + bytes <= memoryBytes();
}

// An output buffer: in memory and not over the static data.
@inline export function writable(ptr: usize, bytes: u64): bool {
  return inMemory(ptr, bytes) && (bytes == 0 || ptr >= __heap_base);
}

@inline export function overlaps(a: usize, aBytes: u64, b: usize, bBytes: u64): bool {
  if (aBytes == 0 || bBytes == 0) return false;
  return <u64>a < <u64>b + bBytes && <u64>b < <u64>a + aBytes;
}

// The u32 pointer at index i of a pointer list in memory.
@inline export function ptrAt(list: usize, i: i32): usize {
  return <usize>load<u32>(list + (<usize>i << 2));
}
