#!/usr/bin/env node
// run.js - ONNX Runtime (onnxruntime-node, CPU) as the reference for the ONNX
// tests: runs one model on raw float32 rows and writes its outputs raw.
//
//   node tests/ort/run.js MODEL.onnx IN.f32 ROWS OUT.f32 [--opt all|basic|extended|disabled]
//
// IN.f32: ROWS x in_dim little-endian float32, in_dim from the model's input
// shape (its last dimension; a [N,1,28,28] input takes 784 floats a row).
// OUT.f32: ROWS x out_dim float32, the model's first output.
// Prints one JSON line: {"rows", "in_dim", "out_dim", "ms", "opt", "ort"}.
// Default session options are ONNX Runtime's own (graph optimization "all",
// which fuses QDQ groups into QGemm/QLinearMatMul): the integers a user of
// ONNX Runtime gets. Exit 2 with one line on any error.
'use strict';
const fs = require('fs');
const path = require('path');

async function main() {
  const argv = process.argv.slice(2);
  let opt = null;
  const pos = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--opt') opt = argv[++i];
    else pos.push(argv[i]);
  }
  if (pos.length !== 4) throw new Error('usage: run.js MODEL.onnx IN.f32 ROWS OUT.f32 [--opt LEVEL]');
  const [modelPath, inPath, rowsArg, outPath] = pos;
  const rows = Number(rowsArg);
  if (!Number.isInteger(rows) || rows < 1) throw new Error('ROWS must be a positive integer');
  let ort;
  try {
    ort = require(path.join(__dirname, 'node_modules', 'onnxruntime-node'));
  } catch (e) {
    throw new Error('onnxruntime-node missing: cd tests/ort && npm ci --ignore-scripts');
  }
  const so = { intraOpNumThreads: 1, interOpNumThreads: 1 };
  if (opt) so.graphOptimizationLevel = opt;
  const sess = await ort.InferenceSession.create(modelPath, so);
  const inName = sess.inputNames[0];
  const meta = sess.inputMetadata ? sess.inputMetadata[0] : null;
  let shape = meta && meta.shape ? meta.shape.slice() : null;
  const buf = fs.readFileSync(inPath);
  const total = buf.length / 4;
  if (!Number.isInteger(total) || total % rows !== 0)
    throw new Error(`${inPath}: ${buf.length} bytes is not ${rows} rows of float32`);
  const inDim = total / rows;
  const x = new Float32Array(buf.buffer, buf.byteOffset, total);
  // The model's input shape with the batch dimension set to ROWS.
  if (!shape || shape.length < 2) shape = [rows, inDim];
  shape = shape.map((d, i) => (i === 0 ? rows : d));
  const per = shape.slice(1).reduce((a, b) => a * b, 1);
  if (per !== inDim) throw new Error(`model input ${JSON.stringify(shape)} takes ${per} floats a row, the file has ${inDim}`);
  const t0 = process.hrtime.bigint();
  const res = await sess.run({ [inName]: new ort.Tensor('float32', x, shape) });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const y = res[sess.outputNames[0]];
  if (y.type !== 'float32') throw new Error(`output type ${y.type}, expected float32`);
  fs.writeFileSync(outPath, Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength));
  console.log(JSON.stringify({ rows, in_dim: inDim, out_dim: y.data.length / rows, ms,
                               opt: opt || 'default', ort: ort.env.versions ? ort.env.versions.common : '' }));
}

main().catch((e) => {
  console.error('run.js: ' + String(e && e.message ? e.message : e).split('\n')[0]);
  process.exit(2);
});
