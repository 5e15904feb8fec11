// The firmware's only window on hardware: the imports the HAL bindings implement (docs/hal.md).
// Everything else crosses the boundary through rings in common memory.

// @ts-ignore: decorator
@external("hal", "doorbell")
export declare function doorbell(id: u32): void;

// A diagnostic line; message is a static string (no allocation after boot).
// @ts-ignore: decorator
@external("hal", "log")
export declare function log(level: u32, message: string, a: u32, b: u32): void;

export const LOG_INFO: u32 = 1;
export const LOG_WARN: u32 = 2;
export const LOG_ERROR: u32 = 3;
