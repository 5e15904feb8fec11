// `npm run bench`: one benchmark, one JSON document on stdout (progress on stderr), exit 0 on
// success, 1 on failure and 2 on a bad command line (the error on stderr). npm prints its own
// banner on stdout: `npm run -s bench > result.json` keeps the file pure JSON.
//   npm run bench                       the SCSI benchmark (bench/scsi-bench.ts)
//   npm run bench -- --quick            the same with short rounds
//   npm run bench -- kernels [args]     the kernel benchmark (bench/kernels.ts; its own --quick, --only=)
//   npm run bench -- nv [args]          NV write IOPS with nv.sync off and on, read hits beside writes
//                                       (bench/nv-bench.ts; --quick, --baseline=<git ref> for before/after)
//   npm run bench -- serial [args]      transfers over a pty checked byte for byte (bench/serial.ts; --mib, --runs, --no-kill)
//   npm run bench -- tape [args]        a labelled file set in 256 KiB records over framed TCP and iSCSI against
//                                       writing the AWS records directly (bench/tape.ts; --quick, --mib, --files)
//   npm run bench -- nbd [args]         fio's nbd engine against sanbox's NBD export, nbdkit memory and qemu-nbd (bench/nbd-bench.ts;
//                                       --quick, --baseline=<git ref> for before/after)
//   npm run bench -- pairs [--quick]    volume pairs in virtual time: split latency by pending share, resync bytes, host
//                                       write IOPS during a creation copy (bench/pairs-bench.ts), host write IOPS beside a server-free
//                                       backup, its rate, range bytes on tape; --only=backup: that case alone
//   npm run bench -- xcopy [--quick]    server-free backup (EXTENDED COPY) against the host copying, split latency
//                                       beside a backup (bench/xcopy-bench.ts)
//   npm run bench -- remote [--quick]   host write latency with a relay at 10 km and the standby at 1,000 km, and async (004), against
//                                       direct synchronous copy at 1,000 km, in virtual time (bench/remote-bench.ts)
//   npm run bench -- redundancy [args]  remote copy at 0, 1, 5 % loss: 8+2 redundancy-processed writes against retransmission
//                                       (bench/redundancy-bench.ts; --mib=N (1024), --window=W (1), --quick: 16 MiB)
// Each benchmark module is loaded only when chosen: kernels.ts sets UV_THREADPOOL_SIZE as it loads,
// which must happen before anything uses the libuv pool.

const BENCHMARKS: Record<string, () => Promise<object>> = {
  scsi: async () => (await import('./scsi-bench')).run(process.argv.slice(2).filter((a) => a !== 'scsi')),
  kernels: async () => (await import('./kernels')).run(),
  nv: async () => (await import('./nv-bench')).run(process.argv.slice(3)),
  serial: async () => (await import('./serial')).run(process.argv.slice(3)),
  tape: async () => (await import('./tape')).run(process.argv.slice(3)),
  nbd: async () => (await import('./nbd-bench')).run(process.argv.slice(3)),
  pairs: async () => (await import('./pairs-bench')).run(process.argv.slice(3)),
  xcopy: async () => (await import('./xcopy-bench')).run(process.argv.slice(3)),
  remote: async () => (await import('./remote-bench')).run(process.argv.slice(3)),
  redundancy: async () => (await import('./redundancy-bench')).run(process.argv.slice(3)),
};

function main(): void {
  const first = process.argv[2];
  const name = first !== undefined && !first.startsWith('-') ? first : 'scsi';
  const bench = BENCHMARKS[name];
  if (!bench) {
    process.stderr.write(`bench: no benchmark "${name}" (known: ${Object.keys(BENCHMARKS).join(', ')})\n`);
    process.exit(2);
  }
  bench().then(
    (report) => {
      // Exit once stdout has it: a lingering handle must not keep a finished run alive.
      process.stdout.write(JSON.stringify(report, null, 2) + '\n', () => process.exit(0));
    },
    (err) => {
      const usage = err instanceof Error && err.name === 'UsageError';
      process.stderr.write(`bench ${name}: ${err instanceof Error ? (usage ? err.message : err.stack) : String(err)}\n`);
      process.exit(usage ? 2 : 1);
    },
  );
}

main();
