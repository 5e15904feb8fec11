import { tempDir, startSmall, createVolume } from './harness/env';
import { execFileSync, spawnSync } from 'child_process';
(async () => {
  const emu = await startSmall({ dir: tempDir('dev'), ports: [{ name: 'fe0', iop: 0, transport: 'tcp', protocol: 'iscsi', port: 0, ...(process.env.CHAP ? { chap: JSON.parse(process.env.CHAP) } : {}) }, { name: 'q0', iop: 0, transport: 'inproc' }] }, { log: console.log });
  await createVolume(emu.connect(), { name: 'v', blocks: Number(process.env.BLOCKS ?? 8192), blockSize: 512 }, 1);
  const target = emu.array().targets[0].target;
  console.log(target);
  const args = process.argv.slice(2);
  const run = (cmd: string, a: string[]) => new Promise<void>((res) => {
    const { spawn } = require('child_process');
    const p = spawn(cmd, a, { stdio: 'inherit' });
    p.on('exit', (c: number) => { console.log(`${cmd} exit ${c}`); res(); });
  });
  for (const a of args) {
    const [cmd, ...rest] = a.split(' ');
    await run(cmd, rest.map((x) => x.replace('URL', target).replace('PORTAL', target.replace(/^iscsi:\/\/([^/]+)\/.*/, '$1'))));
  }
  console.log('stats', emu.array().stats().slice(28));
  await emu.stop();
})();
