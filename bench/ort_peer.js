// ort_peer.js - bench-only: ONNX Runtime (onnxruntime-node from tests/ort)
// as the peer of bench_kernels, driven over stdin/stdout so its timing
// rounds interleave with ours. Times are taken inside node: wall clock
// (process.hrtime) and this process's CPU time (process.cpuUsage: ORT's
// run happens on a worker thread, so process time is what counts), per
// call, over n back-to-back awaited session.run calls.
//   node bench/ort_peer.js INT8.onnx FP32.onnx NOOP.onnx INPUT.f32 ROWS K
// commands (one a line):  check KIND B OUT.f32 | time KIND B N |
//   prof KIND B N PREFIX (a profiling session: the median of ORT's own
//   "model_run" durations, wall, without node's per-call overhead) | quit
// KIND is int8, fp32 or noop; replies one line each.
'use strict';
const fs = require('fs');
const path = require('path');
const readline = require('readline');
const ort = require(path.join(__dirname, '..', 'tests', 'ort', 'node_modules', 'onnxruntime-node'));

async function main() {
  const [int8Path, fp32Path, noopPath, inPath, rowsS, kS] = process.argv.slice(2);
  const rows = Number(rowsS), K = Number(kS);
  const buf = fs.readFileSync(inPath);
  const x = new Float32Array(buf.buffer, buf.byteOffset, rows * K);
  const opts = { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential',
                 graphOptimizationLevel: 'all' };
  const files = { int8: int8Path, fp32: fp32Path, noop: noopPath };
  const sess = { int8: await ort.InferenceSession.create(int8Path, opts),
                 fp32: await ort.InferenceSession.create(fp32Path, opts),
                 noop: await ort.InferenceSession.create(noopPath, opts) };
  // Each graph names its own input and output (bench/ort_model.py: x, y;
  // tools/qat2onnx.py: its names): feeds per session and batch.
  const feeds = {};
  for (const [kind, s] of Object.entries(sess)) {
    feeds[kind] = {};
    for (const B of new Set([1, 16, 64, rows]))
      if (B <= rows) feeds[kind][B] = { [s.inputNames[0]]: new ort.Tensor('float32', x.subarray(0, B * K), [B, K]) };
  }
  const out = (s) => process.stdout.write(s + '\n');
  out(`ready onnxruntime-node ${require(path.join(__dirname, '..', 'tests', 'ort', 'node_modules',
      'onnxruntime-node', 'package.json')).version}`);
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    const [cmd, kind, bS, arg] = line.trim().split(/\s+/);
    if (cmd === 'quit') break;
    const B = Number(bS), s = sess[kind], f = s && feeds[kind][B];
    if (!s || !f) { out('error bad command: ' + line); continue; }
    if (cmd === 'check') {
      const r = await s.run(f);
      const y = r[s.outputNames[0]].data;
      fs.writeFileSync(arg, Buffer.from(y.buffer, y.byteOffset, y.byteLength));
      out('ok');
    } else if (cmd === 'time') {
      const n = Number(arg);
      const c0 = process.cpuUsage(), t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) await s.run(f);
      const t1 = process.hrtime.bigint(), c1 = process.cpuUsage(c0);
      out(`${Number(t1 - t0) / 1e3 / n} ${(c1.user + c1.system) / n}`);
    } else if (cmd === 'prof') {
      const [, , , nS, prefix] = line.trim().split(/\s+/);
      const ps = await ort.InferenceSession.create(files[kind], { ...opts, enableProfiling: true,
                                                                   profileFilePrefix: prefix });
      for (let i = 0; i < 20; i++) await ps.run(f); // warm-up, dropped below
      for (let i = 0; i < Number(nS); i++) await ps.run(f);
      ps.endProfiling();
      const dir = path.dirname(prefix), base = path.basename(prefix);
      const file = fs.readdirSync(dir).filter((n) => n.startsWith(base) && n.endsWith('.json'))
        .map((n) => path.join(dir, n)).sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0];
      const ev = JSON.parse(fs.readFileSync(file, 'utf8'));
      const d = ev.filter((e) => e.name === 'model_run').map((e) => e.dur).slice(20).sort((a, b) => a - b);
      fs.unlinkSync(file);
      out(d.length ? String(d[d.length >> 1]) : 'error no model_run events');
    } else {
      out('error bad command: ' + line);
    }
  }
  process.exit(0);
}
main().catch((e) => { process.stdout.write('error ' + String(e).split('\n')[0] + '\n'); process.exit(1); });
