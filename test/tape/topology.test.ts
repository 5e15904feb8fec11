// The library's topology fields: defaults, and errors that name the bad field.
import test from 'ava';
import { parseTopology, TopologyError } from '../../harness/topology';
import { libraryTopology } from './env';

function withLibrary(library: object): object {
  const t = libraryTopology({ dir: '/tmp/x' }) as { arrays: Array<Record<string, unknown>> };
  t.arrays[0].library = library;
  return t;
}

test('a library gets its defaults: changer at LUN 256, 8 slots, 1 import/export element, 2 drives', (t) => {
  const lib = parseTopology(withLibrary({}), '/tmp').arrays[0].library!;
  t.like(lib, { name: 'library0', lun: 256, slots: 8, importExport: 1, maxBlockBytes: 256 * 1024, density: 0x58 });
  t.deepEqual(lib.drives.map((d) => d.name), ['drive0', 'drive1']);
  t.is(lib.dir, '/tmp/x/a0/library0');
});

const bad: Array<[string, object, RegExp]> = [
  ['lun below 256', { lun: 12 }, /arrays\[0\]\.library\.lun: expected 256/],
  ['slots', { slots: 0 }, /arrays\[0\]\.library\.slots/],
  ['barcode', { cartridges: [{ barcode: 'abc' }] }, /arrays\[0\]\.library\.cartridges\[0\]\.barcode: expected 6 or 8 upper-case/],
  ['duplicate barcode', { cartridges: [{ barcode: 'AAA001L5' }, { barcode: 'AAA001L5' }] }, /cartridges\[1\]\.barcode/],
  ['slot beyond the library', { slots: 2, cartridges: [{ barcode: 'AAA001', slot: 5 }] }, /cartridges\[0\]\.slot: expected 0 to 1/],
  ['two cartridges in a slot', { cartridges: [{ barcode: 'AAA001', slot: 1 }, { barcode: 'AAA002', slot: 1 }] }, /cartridges\[1\]\.slot/],
  ['drive named like a medium', { drives: [{ name: 'd0' }] }, /library\.drives\[0\]\.name: "d0" also names a medium/],
  ['fault', { drives: [{ name: 't0', faults: [{ type: 'melt' }] }] }, /drives\[0\]\.faults\[0\]\.type/],
  ['unknown field', { robots: 2 }, /library\.robots: unknown field/],
  ['too many drives', { drives: Array.from({ length: 16 }, (_, i) => ({ name: `t${i}` })) }, /library\.drives: expected 1 to 15/],
  ['block limit', { maxBlock: '1MiB' }, /library\.maxBlock/],
];
for (const [what, library, message] of bad) {
  test(`a bad library is refused with the field named: ${what}`, (t) => {
    const e = t.throws(() => parseTopology(withLibrary(library), '/tmp'), { instanceOf: TopologyError });
    t.regex(e!.message, message);
  });
}
