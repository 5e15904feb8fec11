// The HAL ABI for the TypeScript side: the same constants the firmware is compiled with.
// Re-exported as the module object itself rather than with `export *`, whose CommonJS output
// reads every constant through a getter: these are read on every ring entry.
import abi = require('../firmware/abi');
export = abi;
