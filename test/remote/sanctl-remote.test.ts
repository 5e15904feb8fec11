// sanctl remote create|status|suspend|resume|failover|delete and sanctl relay status against both
// arrays' firmware and the relay (deterministic: --wait sleeps in virtual time); the trace follows
// one write from A to B by its identifiers (docs/remote.md, "Trace").
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import { startSites } from './sites';
import { runSanctl } from '../host/run-sanctl';
import { pattern } from '../harness/env';

test('sanctl remote and relay status, human and --json; bad input exits 2 or 1 with the reason in words', async (t) => {
  const s = await startSites('sanctl-remote', { relay: { nearKm: 10, farKm: 1000 }, trace: true });
  try {
    const on = (array: string) => ({ connect: async () => s.emu.connect(array), sleep: (ms: number) => s.emu.advance(ms), now: () => s.emu.driver(array).now() / 1e6 });
    const created = await runSanctl(['remote', 'create', 'vol', 'B:mirror', '--via', 'relay0', '--wait'], on('A'));
    t.is(created.code, 0, created.stderr);
    t.regex(created.stdout, /vol primary -> node 1:mirror via node 2 pair, issuing ID \d+/);
    await s.a.write(1, 8, pattern(32 * 1024, 3));
    await s.emu.advance(50);
    const st = JSON.parse((await runSanctl(['--json', 'remote', 'status'], on('A'))).stdout);
    t.like(st.pairs[0], { role: 'primary', state: 'pair', viaRelay: true, inFlight: 0 });
    const sb = JSON.parse((await runSanctl(['--json', 'remote', 'status'], on('B'))).stdout);
    t.like(sb.pairs[0], { role: 'secondary', state: 'pair', issuingId: st.pairs[0].issuingId }, 'B applied every issuing ID A gave out');
    const relays = JSON.parse((await runSanctl(['--json', 'relay', 'status'], on('A'))).stdout);
    t.like(relays.relays[0], { relay: 'relay0', mode: 'storeAndForward', state: 'running', active: 0, failed: 0 });
    t.true(relays.relays[0].forwarded > 0);
    t.regex((await runSanctl(['relay', 'status'], on('B'))).stdout, /relay0 \(node 2, storeAndForward, running\)/);

    t.is((await runSanctl(['remote', 'suspend', 'vol'], on('A'))).code, 0);
    t.regex((await runSanctl(['remote', 'status'], on('A'))).stdout, /suspended \(user\)/);
    const resumed = await runSanctl(['remote', 'resume', 'vol', '--wait'], on('A'));
    t.is(resumed.code, 0, resumed.stderr);
    t.regex(resumed.stdout, / pair, /);
    const wrongSide = await runSanctl(['remote', 'failover', 'vol'], on('A'));
    t.is(wrongSide.code, 1);
    t.regex(wrongSide.stderr, /REMOTE PAIR STATE DOES NOT ALLOW THIS/);
    t.is((await runSanctl(['remote', 'create', 'vol', 'B'], on('A'))).code, 2, 'the peer is <array>:<volume>');
    t.is((await runSanctl(['remote', 'create', 'vol', 'B:mirror', '--mode', 'fast'], on('A'))).code, 2);
    const noNode = await runSanctl(['remote', 'create', 'vol', 'Z:mirror'], on('B'));
    t.is(noNode.code, 1);
    t.regex(noNode.stderr, /no volume named "vol"/);
    t.is((await runSanctl(['remote', 'failover', 'mirror'], on('B'))).code, 0);
    t.is((await runSanctl(['remote', 'delete', 'vol'], on('A'))).code, 0);
    t.regex((await runSanctl(['remote', 'status'], on('A'))).stdout, /no remote pairs/);
  } finally {
    await s.emu.stop();
  }
  // The trace: the write's send at A (pair, command identifier, issuing ID), RECEIVED from the relay,
  // FORWARDED after B applied it; at B the apply with the same issuing ID.
  const records = fs.readFileSync(path.join(s.dir, 'trace.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  // 32 KiB at byte 4096, sent widened to 8 KiB boundaries: [0, 40 KiB).
  const send = records.find((r) => r.array === 'A' && r.type === 'remoteSend' && r.bytes === 40 * 1024);
  t.truthy(send, 'A traced the send');
  const acks = records.filter((r) => r.array === 'A' && r.type === 'remoteAck' && r.cmdId === send.cmdId).map((r) => r.answer);
  t.deepEqual(acks, ['received', 'forwarded']);
  const apply = records.find((r) => r.array === 'B' && r.type === 'remoteApply' && r.issuingId === send.issuingId);
  t.truthy(apply, 'B traced applying the same issuing ID');
  t.is(apply.status, 0);
  t.true(records.some((r) => r.array === 'A' && r.type === 'remoteState' && r.state === 'suspended' && r.reason === 'user'));
});

test('sanctl remote create --redundancy N+m: over two direct links, the pair copies and B matches; bad values exit 2 naming the rule', async (t) => {
  const s = await startSites('sanctl-remote-rd', { directKm: 100, links: 2, blocks: 1024 });
  try {
    const on = (array: string) => ({ connect: async () => s.emu.connect(array), sleep: (ms: number) => s.emu.advance(ms), now: () => s.emu.driver(array).now() / 1e6 });
    for (const bad of ['8', '8+9', '0+2', '30+3', 'x+y']) {
      const r = await runSanctl(['remote', 'create', 'vol', 'B:mirror', '--redundancy', bad], on('A'));
      t.is(r.code, 2, bad);
      t.regex(r.stderr, /N\+m with N >= 1, m <= 8, N \+ m <= 32/, bad);
    }
    const relayed = await runSanctl(['remote', 'create', 'vol', 'B:mirror', '--redundancy', '8+2', '--via', 'relay0'], on('A'));
    t.is(relayed.code, 2);
    t.regex(relayed.stderr, /not with --via/);
    await s.a.write(1, 0, pattern(1024 * 512, 8));
    const created = await runSanctl(['remote', 'create', 'vol', 'B:mirror', '--mode', 'backup', '--redundancy', '8+2', '--wait'], on('A'));
    t.is(created.code, 0, created.stderr);
    t.regex(created.stdout, /vol primary -> node 1:mirror pair/);
    t.true((await s.a.read(1, 0, 1024)).equals(await s.b.read(1, 0, 1024)));
  } finally {
    await s.emu.stop();
  }
});
