/* app.js - qatserve's page: the models loaded (GET /models), a drawing pad
 * sent to POST /predict with int8 and fp32 probabilities side by side, and a
 * live view computed here from GET /metrics (Prometheus text).
 *
 * Plain JavaScript, no libraries, no build step; it talks only to the server
 * that served it (the CSP forbids anything else). Every failed request shows
 * its message on the page. */
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const MODELS_EVERY_MS = 5000;
  const METRICS_EVERY_MS = 2000;
  const WINDOW_S = 60;

  /* ---------- small helpers ---------- */

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function showError(id, msg) {
    const e = $(id);
    if (msg) {
      e.textContent = msg;
      e.hidden = false;
    } else {
      e.hidden = true;
      e.textContent = '';
    }
  }

  /* Fetches url; resolves to {status, json|text}; rejects with a readable
   * message for network errors and for non-2xx answers (using the server's
   * {"error": ...} when there is one). */
  async function call(url, opts, asText) {
    let resp;
    try {
      resp = await fetch(url, Object.assign({ cache: 'no-store' }, opts || {}));
    } catch (err) {
      throw new Error('cannot reach the server (' + (err && err.message ? err.message : err) + ')');
    }
    const body = await resp.text();
    if (!resp.ok) {
      let msg = body.trim();
      try {
        const j = JSON.parse(body);
        if (j && typeof j.error === 'string') msg = j.error;
      } catch (_) { /* not JSON: show the text */ }
      throw new Error('HTTP ' + resp.status + ' from ' + url + ': ' + (msg || resp.statusText));
    }
    if (asText) return body;
    try {
      return JSON.parse(body);
    } catch (err) {
      throw new Error('bad JSON from ' + url + ': ' + err.message);
    }
  }

  function fmtBytes(n) {
    if (!(n >= 0)) return '–';
    if (n < 1024) return n + ' B';
    if (n < 1024 * 1024) return (n / 1024).toFixed(1) + ' KiB';
    return (n / 1024 / 1024).toFixed(2) + ' MiB';
  }

  function fmtUs(us) {
    if (us === null || us === undefined || !isFinite(us)) return '–';
    if (us < 10) return us.toFixed(2) + ' µs';
    if (us < 100) return us.toFixed(1) + ' µs';
    if (us < 1000) return us.toFixed(0) + ' µs';
    return (us / 1000).toFixed(2) + ' ms';
  }

  function fmtPct(p) {
    if (p === null || p === undefined || isNaN(p)) return '–';
    return (100 * p).toFixed(p >= 0.9995 ? 1 : 2) + '%';
  }

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function softmax(v) {
    let m = -Infinity;
    for (const x of v) if (x > m) m = x;
    const e = v.map((x) => Math.exp(x - m));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((x) => x / s);
  }

  function argmax(v) {
    let b = 0;
    for (let i = 1; i < v.length; i++) if (v[i] > v[b]) b = i;
    return b;
  }

  /* ---------- Models ---------- */

  let models = [];
  const seenVersions = new Map();

  function bitsOf(layers) {
    const w = new Set(layers.map((l) => l.weight_bits));
    const a = new Set(layers.map((l) => l.activation_bits));
    return 'w' + [...w].join('/') + ' a' + [...a].join('/');
  }

  function accuracyOf(meta) {
    /* Training writes accuracy_fp32 / accuracy_fakequant / accuracy_int8
     * (and others, e.g. accuracy_dynamic); show whatever is there. */
    const order = ['accuracy_fp32', 'accuracy_fakequant', 'accuracy_int8'];
    const keys = Object.keys(meta || {}).filter((k) => /^acc(uracy)?(_|$)/.test(k));
    keys.sort((a, b) => {
      const ia = order.indexOf(a), ib = order.indexOf(b);
      return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
    });
    return keys.map((k) => {
      const v = parseFloat(meta[k]);
      const name = (k.replace(/^accuracy_?/, '') || 'accuracy').replace(/^fakequant$/, 'fake-quant');
      return [name, isFinite(v) ? (v <= 1 ? fmtPct(v) : v + '%') : meta[k]];
    });
  }

  function renderModel(m) {
    const card = el('article', 'model');
    card.dataset.name = m.name;
    const h = el('h3', null, m.name + ' ');
    h.appendChild(el('span', 'ver', 'v' + m.version));
    card.appendChild(h);

    const kv = el('dl', 'kv');
    const add = (k, v, cls) => {
      kv.appendChild(el('dt', null, k));
      kv.appendChild(el('dd', cls, v));
    };
    const acc = accuracyOf(m.metadata);
    if (acc.length) {
      const dd = el('dd', 'acc');
      for (const [k, v] of acc) {
        const s = el('span', null, k + ' ');
        s.appendChild(el('b', null, v));
        dd.appendChild(s);
      }
      kv.appendChild(el('dt', null, 'test accuracy'));
      kv.appendChild(dd);
    }
    const layers = m.layers || [];
    const shape = [m.in_dim].concat(layers.map((l) => l.out + (l.activation === 'relu' ? ' relu' : '')));
    add('layers', layers.length + ': ' + shape.join(' → '), 'layers');
    add('bits', 'input ' + (m.input ? m.input.bits : '?') + ', ' + bitsOf(layers));
    add('output', m.out_dim + ' (' + m.out_mode + ')');
    add('file', m.file + ' · ' + fmtBytes(m.file_size));
    add('checksum', m.checksum ? m.checksum.algorithm + ' ' + m.checksum.value : '–');
    add('loaded', m.loaded_at + ' in ' + (+m.load_ms).toFixed(2) + ' ms');
    add('kernel', m.kernel);
    card.appendChild(kv);

    if (m.labels && m.labels.length) {
      const chips = el('div', 'chips');
      chips.setAttribute('aria-label', 'labels');
      m.labels.forEach((l, i) => chips.appendChild(el('span', 'chip', i + ' ' + l)));
      card.appendChild(chips);
    }
    const key = m.name;
    if (seenVersions.has(key) && seenVersions.get(key) !== m.version) card.classList.add('changed');
    seenVersions.set(key, m.version);
    return card;
  }

  function renderModels() {
    const box = $('models');
    box.replaceChildren(...models.map(renderModel));
    $('models-empty').hidden = models.length > 0;
    const sel = $('model-select');
    const keep = sel.value;
    sel.replaceChildren(...models.map((m) => {
      const o = el('option', null, m.name);
      o.value = m.name;
      return o;
    }));
    if (models.some((m) => m.name === keep)) sel.value = keep;
  }

  let modelsSig = '';
  async function loadModels() {
    try {
      const j = await call('/models');
      const list = Array.isArray(j.models) ? j.models : [];
      list.sort((a, b) => a.name.localeCompare(b.name));
      const sig = JSON.stringify(list.map((m) => [m.name, m.version, m.loaded_at]));
      models = list;
      if (sig !== modelsSig) {
        modelsSig = sig;
        renderModels();
      }
      showError('models-error', null);
      setStatus(true, list.length + (list.length === 1 ? ' model' : ' models') + ' loaded');
    } catch (err) {
      showError('models-error', err.message);
      setStatus(false, err.message);
    }
  }

  function setStatus(ok, text) {
    const s = $('status');
    s.className = 'status ' + (ok ? 'ok' : 'bad');
    s.textContent = text;
  }

  function currentModel() {
    const name = $('model-select').value;
    return models.find((m) => m.name === name) || models[0] || null;
  }

  /* ---------- Drawing pad ---------- */

  const pad = $('draw');
  const ctx = pad.getContext('2d', { willReadFrequently: true });
  const SIDE = 28;
  let drawing = false;
  let last = null;
  let dirty = false;

  function clearPad() {
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, pad.width, pad.height);
    dirty = false;
    updatePreview();
  }

  function padPoint(ev) {
    const r = pad.getBoundingClientRect();
    return {
      x: ((ev.clientX - r.left) * pad.width) / r.width,
      y: ((ev.clientY - r.top) * pad.height) / r.height,
    };
  }

  function stroke(a, b) {
    ctx.strokeStyle = '#fff';
    ctx.fillStyle = '#fff';
    ctx.lineWidth = pad.width / 12;
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.beginPath();
    ctx.moveTo(a.x, a.y);
    ctx.lineTo(b.x, b.y);
    ctx.stroke();
    dirty = true;
  }

  /* Pointer events cover mouse, pen and touch alike; touch-action: none on
   * the canvas keeps a finger from scrolling the page while drawing. */
  pad.addEventListener('pointerdown', (ev) => {
    ev.preventDefault();
    drawing = true;
    pad.setPointerCapture(ev.pointerId);
    last = padPoint(ev);
    stroke(last, last);
  });
  pad.addEventListener('pointermove', (ev) => {
    if (!drawing) return;
    ev.preventDefault();
    const p = padPoint(ev);
    stroke(last, p);
    last = p;
  });
  const endStroke = () => {
    if (!drawing) return;
    drawing = false;
    last = null;
    updatePreview();
    if ($('auto').checked) predict();
  };
  pad.addEventListener('pointerup', endStroke);
  pad.addEventListener('pointercancel', endStroke);

  /* Fashion-MNIST images are the object trimmed to its bounding box, scaled
   * so its longer side fills the 28x28 frame, centred, white on black. Do
   * the same: find the ink's box, take the square around it, and average
   * the pixels that fall into each of the 28x28 cells (an area filter, so
   * thin strokes turn grey rather than vanish). Values are /255 in [0, 1]. */
  function toInput() {
    const W = pad.width, H = pad.height;
    const px = ctx.getImageData(0, 0, W, H).data;
    const lum = new Float32Array(W * H);
    let x0 = W, y0 = H, x1 = -1, y1 = -1;
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const i = (y * W + x) * 4;
        const v = 0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2];
        lum[y * W + x] = v;
        if (v > 24) {
          if (x < x0) x0 = x;
          if (x > x1) x1 = x;
          if (y < y0) y0 = y;
          if (y > y1) y1 = y;
        }
      }
    }
    const out = new Float32Array(SIDE * SIDE);
    if (x1 < 0) return out;
    const side = Math.max(x1 - x0 + 1, y1 - y0 + 1);
    const cx = (x0 + x1 + 1) / 2, cy = (y0 + y1 + 1) / 2;
    const sx = cx - side / 2, sy = cy - side / 2;
    const cell = side / SIDE;
    for (let oy = 0; oy < SIDE; oy++) {
      for (let ox = 0; ox < SIDE; ox++) {
        /* Box [bx0, bx1) x [by0, by1) in pad pixels, weighted by overlap. */
        const bx0 = sx + ox * cell, bx1 = bx0 + cell;
        const by0 = sy + oy * cell, by1 = by0 + cell;
        let sum = 0, area = 0;
        for (let y = Math.floor(by0); y < Math.ceil(by1); y++) {
          const wy = Math.min(by1, y + 1) - Math.max(by0, y);
          if (wy <= 0) continue;
          for (let x = Math.floor(bx0); x < Math.ceil(bx1); x++) {
            const wx = Math.min(bx1, x + 1) - Math.max(bx0, x);
            if (wx <= 0) continue;
            const inside = x >= 0 && x < W && y >= 0 && y < H;
            sum += wx * wy * (inside ? lum[y * W + x] : 0);
            area += wx * wy;
          }
        }
        out[oy * SIDE + ox] = area > 0 ? Math.min(1, sum / area / 255) : 0;
      }
    }
    return out;
  }

  function updatePreview() {
    const pv = $('preview');
    const pc = pv.getContext('2d');
    const x = toInput();
    const img = pc.createImageData(SIDE, SIDE);
    for (let i = 0; i < x.length; i++) {
      const v = Math.round(x[i] * 255);
      img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = v;
      img.data[4 * i + 3] = 255;
    }
    pc.putImageData(img, 0, 0);
  }

  /* An image file: drawn onto the pad fitted and centred. Photos of
   * products are dark on light; Fashion-MNIST is light on dark, so a light
   * border means the image is inverted first. */
  function loadFile(file) {
    if (!file) return;
    if (!/^image\//.test(file.type)) {
      showError('predict-error', file.name + ' is not an image (' + (file.type || 'unknown type') + ')');
      return;
    }
    const url = URL.createObjectURL(file);
    const img = new Image();
    img.onload = () => {
      URL.revokeObjectURL(url);
      const W = pad.width, H = pad.height;
      const tmp = document.createElement('canvas');
      tmp.width = W;
      tmp.height = H;
      const tc = tmp.getContext('2d', { willReadFrequently: true });
      tc.fillStyle = '#fff';
      tc.fillRect(0, 0, W, H);
      const s = Math.min(W / img.naturalWidth, H / img.naturalHeight);
      const w = img.naturalWidth * s, h = img.naturalHeight * s;
      tc.drawImage(img, (W - w) / 2, (H - h) / 2, w, h);
      const d = tc.getImageData(0, 0, W, H);
      /* Mean luminance of the 2-pixel border of the drawn image area. */
      let sum = 0, n = 0;
      const bx0 = Math.floor((W - w) / 2), by0 = Math.floor((H - h) / 2);
      const bx1 = Math.ceil((W + w) / 2) - 1, by1 = Math.ceil((H + h) / 2) - 1;
      for (let y = by0; y <= by1; y++) {
        for (let x = bx0; x <= bx1; x++) {
          if (x - bx0 > 1 && bx1 - x > 1 && y - by0 > 1 && by1 - y > 1) continue;
          const i = (y * W + x) * 4;
          sum += 0.299 * d.data[i] + 0.587 * d.data[i + 1] + 0.114 * d.data[i + 2];
          n++;
        }
      }
      const invert = n > 0 && sum / n > 127;
      for (let i = 0; i < d.data.length; i += 4) {
        let v = 0.299 * d.data[i] + 0.587 * d.data[i + 1] + 0.114 * d.data[i + 2];
        if (invert) v = 255 - v;
        d.data[i] = d.data[i + 1] = d.data[i + 2] = v;
        d.data[i + 3] = 255;
      }
      ctx.putImageData(d, 0, 0);
      dirty = true;
      updatePreview();
      showError('predict-error', null);
      predict();
    };
    img.onerror = () => {
      URL.revokeObjectURL(url);
      showError('predict-error', 'cannot decode ' + file.name + ' as an image');
    };
    img.src = url;
  }

  /* ---------- Predict ---------- */

  function renderBars(id, probs, labels, top) {
    const box = $(id).querySelector('.bars');
    if (!probs) {
      box.replaceChildren(el('span', 'muted', 'not available'));
      return;
    }
    const rows = [];
    probs.forEach((p, i) => {
      const name = el('span', 'name' + (i === top ? ' top' : ''), labels[i] !== undefined ? labels[i] : String(i));
      name.title = name.textContent;
      const track = el('span', 'track');
      const fill = el('span', 'fill');
      fill.style.width = (100 * p).toFixed(2) + '%'; /* CSSOM, allowed by the CSP */
      track.appendChild(fill);
      const pct = el('span', 'pct' + (i === top ? ' top' : ''), (100 * p).toFixed(p > 0.0995 ? 0 : 1) + '%');
      track.setAttribute('role', 'img');
      track.setAttribute('aria-label', name.textContent + ' ' + pct.textContent);
      rows.push(name, track, pct);
    });
    box.replaceChildren(...rows);
  }

  let inFlight = false;
  let again = false;

  async function predict() {
    const m = currentModel();
    if (!m) {
      showError('predict-error', 'no model is loaded: nothing to ask');
      return;
    }
    if (inFlight) {
      again = true;
      return;
    }
    if (m.in_dim !== SIDE * SIDE) {
      showError('predict-error', 'model ' + m.name + ' takes ' + m.in_dim +
        ' inputs; the pad makes 784 (28×28)');
      return;
    }
    inFlight = true;
    $('predict').disabled = true;
    const x = Array.from(toInput(), (v) => Math.round(v * 1e4) / 1e4);
    try {
      const j = await call('/predict', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ model: m.name, inputs: [x], fp32_outputs: true }),
      });
      showResult(j, m);
      showError('predict-error', null);
    } catch (err) {
      showError('predict-error', err.message);
    } finally {
      inFlight = false;
      $('predict').disabled = false;
      if (again) {
        again = false;
        predict();
      }
    }
  }

  function showResult(j, m) {
    const labels = m.labels && m.labels.length ? m.labels : [];
    const name = (i) => (labels[i] !== undefined ? labels[i] : 'class ' + i);
    const p8 = softmax(j.outputs[0]);
    const top8 = argmax(p8);
    const o32 = j.fp32_outputs ? j.fp32_outputs[0] : null;
    const p32 = o32 ? softmax(o32) : null;
    const top32 = p32 ? argmax(p32) : -1;
    $('label-int8').textContent = name(top8) + ' (' + fmtPct(p8[top8]) + ')';
    $('label-fp32').textContent = p32 ? name(top32) + ' (' + fmtPct(p32[top32]) + ')' +
      (top32 === top8 ? ' ✓ agree' : ' ✗ disagree') : 'not returned';
    $('verdict').hidden = false;
    const lat = j.latency_us || {};
    $('lat-int8').textContent = fmtUs(lat.int8);
    $('lat-fp32').textContent = fmtUs(lat.fp32);
    $('speedup').textContent = lat.speedup ? lat.speedup.toFixed(2) + '×' : '–';
    $('lat-total').textContent = fmtUs(lat.total);
    $('drift').textContent = j.drift && j.drift.max_abs_diff !== undefined
      ? Number(j.drift.max_abs_diff).toPrecision(3) : '–';
    $('figures').hidden = false;
    renderBars('chart-int8', p8, labels, top8);
    renderBars('chart-fp32', p32, labels, top32);
    $('try-section').dataset.done = String((+($('try-section').dataset.done || 0)) + 1);
  }

  /* ---------- Live: /metrics ---------- */

  /* Parses the Prometheus text format into [{name, labels, value}]. */
  function parseProm(text) {
    const out = [];
    const re = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/;
    const lre = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
    for (const line of text.split('\n')) {
      if (!line || line[0] === '#') continue;
      const m = re.exec(line);
      if (!m) continue;
      const labels = {};
      if (m[3]) {
        let l;
        lre.lastIndex = 0;
        while ((l = lre.exec(m[3]))) labels[l[1]] = l[2].replace(/\\(.)/g, '$1');
      }
      const v = m[4] === '+Inf' ? Infinity : m[4] === '-Inf' ? -Infinity : parseFloat(m[4]);
      out.push({ name: m[1], labels, value: v });
    }
    return out;
  }

  /* One sample: counters summed over models. Histograms are cumulative
   * bucket counts by upper bound (seconds). */
  function sampleOf(series, t) {
    const s = { t, req: 0, inflight: 0, reloads: 0, refusals: 0, hist: { int8: new Map(), fp32: new Map() }, build: null };
    for (const x of series) {
      if (x.name === 'qatserve_requests_total') {
        if (x.labels.endpoint === 'predict' || x.labels.endpoint === 'v2_infer') s.req += x.value;
      } else if (x.name === 'qatserve_requests_in_flight') {
        s.inflight = x.value;
      } else if (x.name === 'qatserve_model_reloads_total') {
        s.reloads = x.value;
      } else if (x.name === 'qatserve_model_refusals_total') {
        s.refusals = x.value;
      } else if (x.name === 'qatserve_build_info') {
        s.build = x.labels;
      } else {
        const m = /^qatserve_(int8|fp32)_latency_seconds_bucket$/.exec(x.name);
        if (m) {
          const le = x.labels.le === '+Inf' ? Infinity : parseFloat(x.labels.le);
          const h = s.hist[m[1]];
          h.set(le, (h.get(le) || 0) + x.value);
        }
      }
    }
    for (const k of ['int8', 'fp32']) {
      s.hist[k] = [...s.hist[k].entries()].sort((a, b) => a[0] - b[0]);
    }
    return s;
  }

  /* Quantile q of the requests observed between samples a and b (a before
   * b), interpolating linearly inside a bucket as Prometheus's
   * histogram_quantile does. Returns seconds, or null with no requests. */
  function quantile(q, a, b, kind) {
    const hb = b.hist[kind];
    const ha = new Map(a ? a.hist[kind] : []);
    const cum = hb.map(([le, c]) => [le, c - (ha.get(le) || 0)]);
    if (!cum.length) return null;
    const total = cum[cum.length - 1][1];
    if (!(total > 0)) return null;
    const rank = q * total;
    let prevLe = 0, prevC = 0;
    for (const [le, c] of cum) {
      if (c >= rank) {
        if (le === Infinity) return prevLe; /* beyond the last bound: report it */
        const inBucket = c - prevC;
        return prevLe + (le - prevLe) * (inBucket > 0 ? (rank - prevC) / inBucket : 1);
      }
      prevLe = le;
      prevC = c;
    }
    return prevLe;
  }

  let ring = []; /* samples, oldest first, spanning a bit over WINDOW_S */

  async function pollMetrics() {
    let text;
    try {
      text = await call('/metrics', null, true);
    } catch (err) {
      showError('live-error', err.message);
      return;
    }
    showError('live-error', null);
    const s = sampleOf(parseProm(text), performance.now() / 1000);
    const prev = ring[ring.length - 1];
    /* Counters went back (the server restarted) or the tab slept past the
     * window: start the minute afresh. */
    if (prev && (s.req < prev.req || s.t - prev.t > WINDOW_S)) ring = [];
    ring.push(s);
    while (ring.length > 2 && s.t - ring[1].t >= WINDOW_S) ring.shift();
    renderLive();
  }

  function renderLive() {
    const s = ring[ring.length - 1];
    const a = ring[0];
    if (!s) return;
    const dt = s.t - a.t;
    $('rps').textContent = ring.length > 1 && dt > 0 ? ((s.req - a.req) / dt).toFixed(1) : '–';
    for (const k of ['int8', 'fp32']) {
      const p50 = ring.length > 1 ? quantile(0.5, a, s, k) : null;
      const p99 = ring.length > 1 ? quantile(0.99, a, s, k) : null;
      $('p-' + k).textContent = p50 === null ? 'no requests'
        : fmtUs(p50 * 1e6) + ' / ' + fmtUs(p99 * 1e6);
    }
    /* The scrape that produced this sample is itself in flight. */
    $('inflight').textContent = String(Math.max(0, s.inflight - 1));
    $('reloads').textContent = String(s.reloads);
    $('refusals').textContent = String(s.refusals);
    if (s.build) $('build').textContent = 'qatserve ' + (s.build.version || '') + ' · kernel ' + (s.build.kernel || '');
    drawLive();
  }

  /* The chart: p50 (solid) and p99 (dashed) of each interval between two
   * samples, int8 and fp32, over the last minute; x is seconds ago. */
  function drawLive() {
    const c = $('live-chart');
    const dpr = window.devicePixelRatio || 1;
    const cw = Math.max(200, Math.round(c.clientWidth || 640));
    const ch = Math.max(100, Math.round(c.clientHeight || 180));
    if (c.width !== cw * dpr || c.height !== ch * dpr) {
      c.width = cw * dpr;
      c.height = ch * dpr;
    }
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, cw, ch);
    const fg = cssVar('--muted') || '#666', grid = cssVar('--grid') || '#ddd';
    const colors = { int8: cssVar('--int8') || '#2b6cb0', fp32: cssVar('--fp32') || '#c05621' };
    const L = 56, R = 10, T = 10, B = 22;
    const pw = cw - L - R, ph = ch - T - B;
    const now = ring.length ? ring[ring.length - 1].t : 0;
    const pts = { int8: [], fp32: [] };
    let ymax = 0, ymin = Infinity;
    for (let i = 1; i < ring.length; i++) {
      for (const k of ['int8', 'fp32']) {
        const p50 = quantile(0.5, ring[i - 1], ring[i], k);
        const p99 = quantile(0.99, ring[i - 1], ring[i], k);
        const ago = now - ring[i].t;
        pts[k].push(p50 === null ? null : { ago, p50: p50 * 1e6, p99: p99 * 1e6 });
        if (p99 !== null) ymax = Math.max(ymax, p99 * 1e6);
        if (p50 !== null && p50 > 0) ymin = Math.min(ymin, p50 * 1e6);
      }
    }
    /* Log scale: int8 and fp32 medians sit near each other while a p99
     * on a busy two-core machine can be 100x larger. */
    let lo = Math.pow(10, Math.floor(Math.log10(ymin > 0 && isFinite(ymin) ? ymin : 10)));
    let hi = Math.pow(10, Math.ceil(Math.log10(ymax > 0 ? ymax : 100)));
    if (hi / lo < 100) hi = lo * 100;
    const ly = (v) => (Math.log10(Math.max(lo, Math.min(v, hi))) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo));
    g.font = '11px system-ui, sans-serif';
    g.lineWidth = 1;
    g.fillStyle = fg;
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    const decades = Math.round(Math.log10(hi / lo));
    for (let d = lo; d <= hi * 1.0001; d *= 10) {
      for (const m of decades <= 3 ? [1, 2, 5] : [1]) {
        const v = d * m;
        if (v > hi * 1.0001) break;
        const y = T + ph - ph * ly(v);
        g.strokeStyle = grid;
        g.beginPath();
        g.moveTo(L, y);
        g.lineTo(L + pw, y);
        g.stroke();
        if (m === 1 || decades <= 2) g.fillText(v >= 1000 ? v / 1000 + ' ms' : v + ' µs', L - 4, y);
      }
    }
    g.textAlign = 'center';
    g.textBaseline = 'top';
    for (const s of [60, 45, 30, 15, 0]) {
      const x = L + pw - (pw * s) / WINDOW_S;
      g.fillText(s ? '-' + s + ' s' : 'now', x, T + ph + 6);
    }
    const X = (ago) => L + pw - (pw * Math.min(ago, WINDOW_S)) / WINDOW_S;
    const Y = (v) => T + ph - ph * ly(v);
    for (const k of ['fp32', 'int8']) {
      for (const which of ['p99', 'p50']) {
        g.strokeStyle = colors[k];
        g.lineWidth = which === 'p50' ? 2 : 1.5;
        g.setLineDash(which === 'p50' ? [] : [5, 4]);
        g.beginPath();
        let pen = false;
        for (const p of pts[k]) {
          if (!p) {
            pen = false;
            continue;
          }
          if (pen) g.lineTo(X(p.ago), Y(p[which]));
          else g.moveTo(X(p.ago), Y(p[which]));
          pen = true;
        }
        g.stroke();
        /* A lone point (one interval with traffic) would draw nothing. */
        g.fillStyle = colors[k];
        pts[k].forEach((p, i) => {
          if (p && !pts[k][i - 1] && !pts[k][i + 1]) {
            g.beginPath();
            g.arc(X(p.ago), Y(p[which]), 2.5, 0, 2 * Math.PI);
            g.fill();
          }
        });
      }
    }
    g.setLineDash([]);
    if (!pts.int8.some((p) => p) && !pts.fp32.some((p) => p)) {
      g.fillStyle = fg;
      g.textAlign = 'center';
      g.textBaseline = 'middle';
      g.fillText('no inference requests in the last minute', L + pw / 2, T + ph / 2);
    }
  }

  /* ---------- wiring ---------- */

  $('predict').addEventListener('click', () => predict());
  $('clear').addEventListener('click', () => {
    clearPad();
    showError('predict-error', null);
  });
  $('file').addEventListener('change', (ev) => {
    loadFile(ev.target.files && ev.target.files[0]);
    ev.target.value = '';
  });
  window.addEventListener('resize', () => drawLive());
  if (window.matchMedia) {
    const mq = window.matchMedia('(prefers-color-scheme: dark)');
    if (mq.addEventListener) mq.addEventListener('change', () => drawLive());
  }

  clearPad();
  drawLive();
  loadModels();
  pollMetrics();
  /* A tab in the background does not poll (no access-log lines, no load);
   * it catches up as soon as it is shown again. */
  setInterval(() => { if (!document.hidden) loadModels(); }, MODELS_EVERY_MS);
  setInterval(() => { if (!document.hidden) pollMetrics(); }, METRICS_EVERY_MS);
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) {
      loadModels();
      pollMetrics();
    }
  });
})();
