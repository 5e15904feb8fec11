// The HAL ABI for the TypeScript side: the same constants the firmware is compiled with.
export * from '../firmware/abi';
