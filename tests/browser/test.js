// test.js - drives Debian's chromium (playwright-core, never a downloaded
// browser) against the qatserve that run.sh started, and checks the page as a
// person would use it: headers and CSP, the model list, drawing with the
// mouse and with touch, both probability charts and the latency figures, the
// live panel, a reload and a server error shown on the page, no console
// errors and no CSP violations. Screenshots go to $QS_OUT.
'use strict';

const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

// Polls a predicate in the page through page.evaluate (CDP callFunctionOn),
// not page.waitForFunction: older playwright-core (the one that still runs on
// Debian 12's Node 18) evaluates waitForFunction's predicate as a string,
// which the page's CSP (no 'unsafe-eval') rightly blocks.
async function waitUntil(page, fn, arg, opts) {
  const timeout = (opts && opts.timeout) || 30000;
  const end = Date.now() + timeout;
  for (;;) {
    if (await page.evaluate(fn, arg)) return;
    if (Date.now() > end) throw new Error('waitUntil: timed out after ' + timeout + ' ms: ' + fn.toString().slice(0, 120));
    await new Promise((r) => setTimeout(r, 50));
  }
}

const URL0 = process.env.QS_URL;
// JSON bodies say so: the server refuses text/plain (what fetch sends for a
// string body by default), so a form on another site cannot post one.
const JSON_CT = { 'Content-Type': 'application/json' };
const OUT = process.env.QS_OUT;
const MODELS = process.env.QS_MODELS;
const RELOAD = process.env.QS_RELOAD;
const PROFILE = process.env.QS_PROFILE;
const EXE = process.env.CHROMIUM || '/usr/bin/chromium';
const CSP_WANT = {
  'default-src': "'self'",
  'script-src': "'self'",
  'style-src': "'self'",
  'connect-src': "'self'",
  'object-src': "'none'",
  'base-uri': "'none'",
  'frame-ancestors': "'none'",
};

let passed = 0;
let failed = 0;
const t0 = Date.now();

function check(name, ok, detail) {
  if (ok) {
    passed++;
    console.log('  ok   ' + name);
  } else {
    failed++;
    console.log('  FAIL ' + name + (detail !== undefined ? ': ' + detail : ''));
  }
  return ok;
}

async function step(name, fn) {
  try {
    await fn();
  } catch (err) {
    check(name, false, err && err.stack ? err.stack.split('\n').slice(0, 3).join(' | ') : err);
  }
}

function parseCsp(h) {
  const m = {};
  for (const part of (h || '').split(';')) {
    const w = part.trim().split(/\s+/);
    if (w[0]) m[w[0]] = w.slice(1).join(' ');
  }
  return m;
}

function softmaxArgmax(v) {
  let b = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[b]) b = i;
  return b;
}

async function headerChecks() {
  const assets = [
    ['/', 'text/html'],
    ['/app.js', 'text/javascript'],
    ['/app.css', 'text/css'],
    ['/favicon.svg', 'image/svg+xml'],
  ];
  for (const [p, type] of assets) {
    const r = await fetch(URL0 + p);
    const body = await r.text();
    check('GET ' + p + ' is 200 ' + type, r.status === 200 && (r.headers.get('content-type') || '').startsWith(type),
      r.status + ' ' + r.headers.get('content-type'));
    check('GET ' + p + ' has a body', body.length > 50, body.length);
    check('GET ' + p + ' nosniff', r.headers.get('x-content-type-options') === 'nosniff');
    check('GET ' + p + ' Cache-Control no-cache + ETag',
      r.headers.get('cache-control') === 'no-cache' && /^"[0-9]+-[0-9]+"$/.test(r.headers.get('etag') || ''),
      r.headers.get('cache-control') + ' ' + r.headers.get('etag'));
    const csp = parseCsp(r.headers.get('content-security-policy'));
    const bad = Object.entries(CSP_WANT).filter(([k, v]) => csp[k] !== v);
    check('GET ' + p + ' CSP allows only this origin, no inline',
      bad.length === 0 && !/unsafe|http:|https:|\*/.test(r.headers.get('content-security-policy')),
      JSON.stringify(bad) + ' in ' + r.headers.get('content-security-policy'));
    const r304 = await fetch(URL0 + p, { headers: { 'If-None-Match': r.headers.get('etag') } });
    check('GET ' + p + ' with its ETag is 304', r304.status === 304, r304.status);
  }
  const html = await (await fetch(URL0 + '/')).text();
  check('index.html has no inline script, style or handlers',
    !/<script(?![^>]*\bsrc=)[^>]*>/i.test(html) && !/<style/i.test(html) && !/\sstyle=/i.test(html) &&
    !/\son[a-z]+=/i.test(html));
  check('index.html loads nothing from elsewhere', !/(src|href)="(https?:)?\/\//i.test(html));
  const head = await fetch(URL0 + '/', { method: 'HEAD' });
  check('HEAD / is 200 with no body', head.status === 200 && (await head.text()) === '');
  const post = await fetch(URL0 + '/', { method: 'POST', body: 'x' });
  check('POST / is 405 with Allow', post.status === 405 && /GET/.test(post.headers.get('allow') || ''),
    post.status);
  const nf = await fetch(URL0 + '/nope.js');
  check('GET /nope.js is 404', nf.status === 404, nf.status);

  // The /predict option the page relies on: fp32_outputs.
  const row = new Array(784).fill(0).map((_, i) => ((i * 37) % 256) / 255);
  const ask = async (extra) => fetch(URL0 + '/predict', {
    method: 'POST', headers: JSON_CT,
    body: JSON.stringify(Object.assign({ inputs: [row, row.slice().reverse()] }, extra)),
  });
  const j = await (await ask({ fp32_outputs: true })).json();
  const ok = Array.isArray(j.fp32_outputs) && j.fp32_outputs.length === 2 &&
    j.fp32_outputs[0].length === j.outputs[0].length;
  check('fp32_outputs: one fp32 row per input row', ok, JSON.stringify(j).slice(0, 200));
  if (ok) {
    let md = 0, agree = 0;
    j.outputs.forEach((o, r) => {
      o.forEach((v, c) => { md = Math.max(md, Math.abs(v - j.fp32_outputs[r][c])); });
      agree += softmaxArgmax(o) === softmaxArgmax(j.fp32_outputs[r]);
    });
    check('fp32_outputs agree with the server\'s drift', Math.abs(md - j.drift.max_abs_diff) <= 1e-6 * (1 + md) &&
      agree / 2 === j.drift.argmax_agreement, md + ' vs ' + j.drift.max_abs_diff);
  }
  const plain = await (await ask({})).json();
  check('no fp32_outputs unless asked', !('fp32_outputs' in plain) && JSON.stringify(plain.outputs) === JSON.stringify(j.outputs));
  const nob = await (await ask({ fp32_outputs: true, baseline: false })).json();
  check('no fp32_outputs without the baseline', !('fp32_outputs' in nob) && nob.drift === null);
  const bad = await ask({ fp32_outputs: 'yes' });
  check('fp32_outputs must be a boolean (400)', bad.status === 400 && /fp32_outputs/.test((await bad.json()).error));
}

// Draws a T-shirt-ish outline (shoulders, sleeves, body) with the mouse.
async function drawWithMouse(page) {
  const box = await page.locator('#draw').boundingBox();
  const P = (x, y) => [box.x + (x * box.width) / 28, box.y + (y * box.height) / 28];
  const strokes = [
    [[4, 8], [10, 4], [18, 4], [24, 8], [21, 12], [19, 10], [19, 24], [9, 24], [9, 10], [7, 12], [4, 8]],
    [[11, 12], [17, 12]],
    [[11, 17], [17, 17]],
    [[11, 21], [17, 21]],
  ];
  for (const s of strokes) {
    await page.mouse.move(...P(...s[0]));
    await page.mouse.down();
    for (const pt of s.slice(1)) await page.mouse.move(...P(...pt), { steps: 6 });
    await page.mouse.up();
  }
}

// Draws a vertical bar (trousers-ish) with touch events through CDP, which
// Chromium turns into pointer events of type "touch".
async function drawWithTouch(page) {
  const box = await page.locator('#draw').boundingBox();
  const cdp = await page.context().newCDPSession(page);
  const P = (x, y) => ({ x: box.x + (x * box.width) / 28, y: box.y + (y * box.height) / 28 });
  for (const [a, b] of [[[10, 3], [10, 25]], [[18, 3], [18, 25]], [[10, 3], [18, 3]]]) {
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [P(...a)] });
    for (let i = 1; i <= 10; i++) {
      const f = i / 10;
      await cdp.send('Input.dispatchTouchEvent', {
        type: 'touchMove',
        touchPoints: [P(a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f)],
      });
    }
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
  }
  await cdp.detach();
}

async function doneCount(page) {
  return Number((await page.locator('#try-section').getAttribute('data-done')) || 0);
}

// Checks what a finished prediction shows against the server's own answer
// for the same input, sent again from here.
async function checkResult(page, sent, label) {
  const bars8 = page.locator('#chart-int8 .track');
  const bars32 = page.locator('#chart-fp32 .track');
  const n = JSON.parse(sent).inputs[0].length;
  check(label + ': the page sent 784 inputs in [0,1]', n === 784 &&
    JSON.parse(sent).inputs[0].every((v) => v >= 0 && v <= 1) && JSON.parse(sent).inputs[0].some((v) => v > 0.5),
    n);
  const mine = await (await fetch(URL0 + '/predict', { method: 'POST', headers: JSON_CT, body: sent })).json();
  const models = (await (await fetch(URL0 + '/models')).json()).models;
  const labels = models[0].labels;
  const out = mine.outputs[0];
  check(label + ': int8 chart has one bar per class', (await bars8.count()) === out.length, await bars8.count());
  check(label + ': fp32 chart has one bar per class', (await bars32.count()) === out.length, await bars32.count());
  const want8 = labels[softmaxArgmax(out)];
  const want32 = labels[softmaxArgmax(mine.fp32_outputs[0])];
  const got8 = await page.locator('#label-int8').textContent();
  const got32 = await page.locator('#label-fp32').textContent();
  check(label + ': int8 label is the server\'s argmax', got8.startsWith(want8 + ' ('), got8 + ' vs ' + want8);
  check(label + ': fp32 label is the fp32 argmax', got32.startsWith(want32 + ' ('), got32 + ' vs ' + want32);
  const widths = await page.$$eval('#chart-int8 .fill', (fs) => fs.map((f) => parseFloat(f.style.width)));
  const sum = widths.reduce((a, b) => a + b, 0);
  check(label + ': int8 bars are probabilities (sum 100%)', Math.abs(sum - 100) < 0.5, sum);
  const top = await page.locator('#chart-int8 .name.top').textContent();
  check(label + ': the top int8 bar is the predicted label', top === want8, top);
  const w32 = await page.$$eval('#chart-fp32 .fill', (fs) => fs.map((f) => parseFloat(f.style.width)));
  check(label + ': fp32 bars sum to 100%', Math.abs(w32.reduce((a, b) => a + b, 0) - 100) < 0.5);
  for (const id of ['lat-int8', 'lat-fp32', 'lat-total']) {
    const t = await page.locator('#' + id).textContent();
    check(label + ': ' + id + ' shows a time', /^[0-9.]+ (µs|ms)$/.test(t), t);
  }
  const sp = await page.locator('#speedup').textContent();
  check(label + ': speed-up shown', /^[0-9.]+×$/.test(sp), sp);
  const dr = await page.locator('#drift').textContent();
  check(label + ': drift shown', isFinite(parseFloat(dr)), dr);
}

async function predictAndWait(page, how) {
  const before = await doneCount(page);
  let sent = null;
  const onReq = (req) => {
    if (req.url().endsWith('/predict') && req.method() === 'POST') sent = req.postData();
  };
  page.on('request', onReq);
  await how(page);
  await page.click('#predict');
  await waitUntil(page, (b) => Number(document.getElementById('try-section').dataset.done || 0) > b,
    before, { timeout: 10000 });
  // The auto-predict after each stroke and the click may both be in flight:
  // wait until the button is enabled again (no request pending).
  await waitUntil(page, () => !document.getElementById('predict').disabled, null, { timeout: 10000 });
  await page.waitForTimeout(300);
  page.off('request', onReq);
  return sent;
}

async function main() {
  console.log('browser-test: ' + EXE + ' against ' + URL0);
  await step('headers', headerChecks);

  fs.rmSync(PROFILE, { recursive: true, force: true });
  const ctx = await chromium.launchPersistentContext(PROFILE, {
    executablePath: EXE,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 1000 },
    hasTouch: true,
    colorScheme: 'light',
  });
  const page = ctx.pages()[0] || (await ctx.newPage());
  const consoleErrors = [];
  const failedReqs = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') consoleErrors.push(m.type() + ': ' + m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push('pageerror: ' + e.message));
  page.on('requestfailed', (r) => failedReqs.push(r.url() + ' ' + (r.failure() || {}).errorText));
  // Runs before the page's own script; records CSP violations. (Init
  // scripts are injected by the browser, not subject to the page's CSP.)
  await ctx.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) =>
      window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
  });

  try {
    await step('page', async () => {
      const resp = await page.goto(URL0 + '/', { waitUntil: 'load' });
      check('page loads (200)', resp.status() === 200, resp.status());
      check('title', (await page.title()) === 'qatserve');
      const csp = parseCsp(resp.headers()['content-security-policy']);
      check('the browser sees the CSP header', csp['script-src'] === "'self'" && csp['default-src'] === "'self'");
    });

    await step('models', async () => {
      const want = (await (await fetch(URL0 + '/models')).json()).models;
      await page.waitForSelector('#models .model', { timeout: 10000 });
      const cards = page.locator('#models .model');
      check('one card per loaded model', (await cards.count()) === want.length, await cards.count());
      const text = await cards.first().textContent();
      const m = want[0];
      check('card names the model', text.includes(m.name));
      check('card shows the layers', text.includes(m.layers.length + ': ' + m.in_dim + ' → '), text);
      check('card shows bit widths', /w8/.test(text) && /input 8/.test(text), text);
      check('card shows every label', m.labels.every((l) => text.includes(l)));
      check('card shows the accuracy recorded at training',
        Object.keys(m.metadata).filter((k) => k.startsWith('accuracy')).every((k) => {
          const v = parseFloat(m.metadata[k]);
          return text.includes((100 * v).toFixed(v >= 0.9995 ? 1 : 2) + '%');
        }) && /test accuracy/.test(text), text);
      check('card shows file size and load time', /[0-9.]+ (B|KiB|MiB)/.test(text) && /in [0-9.]+ ms/.test(text), text);
      check('status says loaded', /loaded/.test(await page.locator('#status').textContent()));
    });

    await step('draw with the mouse and predict', async () => {
      const sent = await predictAndWait(page, drawWithMouse);
      check('a prediction was sent', !!sent);
      const px = await page.evaluate(() => {
        const c = document.getElementById('preview').getContext('2d');
        const d = c.getImageData(0, 0, 28, 28).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] > 128) n++;
        return n;
      });
      check('the 28x28 preview has ink', px > 40 && px < 700, px);
      if (sent) await checkResult(page, sent, 'mouse');
    });

    await step('live panel', async () => {
      // Traffic from here for a few seconds (bounded: 6 s, one request at a
      // time, 20 ms apart) so the last minute has something to chart.
      const body = JSON.stringify({ inputs: [new Array(784).fill(0).map((_, i) => (i % 7) / 7)] });
      let sentN = 0;
      for (const end = Date.now() + 6000; Date.now() < end; sentN++) {
        const r = await fetch(URL0 + '/predict', { method: 'POST', body });
        await r.text();
        await new Promise((res) => setTimeout(res, 20));
      }
      await page.click('#predict');
      await page.waitForTimeout(2200); // one more metrics poll after the traffic
      await waitUntil(page, () => /µs|ms/.test(document.getElementById('p-int8').textContent),
        null, { timeout: 12000 });
      const rps = parseFloat(await page.locator('#rps').textContent());
      // ~sentN requests over the 6 s, inside a window of at most a minute.
      check('requests/s counts the traffic', rps >= sentN / 60 && rps <= sentN, rps + ' for ' + sentN);
      const p8 = await page.locator('#p-int8').textContent();
      const p32 = await page.locator('#p-fp32').textContent();
      check('int8 p50 / p99 shown', /^[0-9.]+ (µs|ms) \/ [0-9.]+ (µs|ms)$/.test(p8), p8);
      check('fp32 p50 / p99 shown', /^[0-9.]+ (µs|ms) \/ [0-9.]+ (µs|ms)$/.test(p32), p32);
      check('in flight, reloads, refusals shown',
        /^[0-9]+$/.test(await page.locator('#inflight').textContent()) &&
        /^[0-9]+$/.test(await page.locator('#reloads').textContent()) &&
        /^[0-9]+$/.test(await page.locator('#refusals').textContent()));
      // The chart has drawn lines in the int8 colour.
      const coloured = await page.evaluate(() => {
        const c = document.getElementById('live-chart');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 200 && Math.abs(d[i] - d[i + 2]) > 60) n++;
        return n;
      });
      check('the live chart draws latency lines', coloured > 20, coloured);
      await page.screenshot({ path: path.join(OUT, 'page.png'), fullPage: true });
      check('screenshot saved', fs.statSync(path.join(OUT, 'page.png')).size > 10000);
    });

    await step('no console errors, no CSP violations', async () => {
      const csp = await page.evaluate(() => window.__csp);
      check('no CSP violations', csp.length === 0, JSON.stringify(csp));
      check('no console errors or warnings', consoleErrors.length === 0, JSON.stringify(consoleErrors));
      check('no failed requests', failedReqs.length === 0, JSON.stringify(failedReqs));
    });

    await step('narrow window with touch', async () => {
      await page.setViewportSize({ width: 390, height: 844 });
      await page.click('#clear');
      const sent = await predictAndWait(page, drawWithTouch);
      check('touch drawing sent a prediction', !!sent);
      if (sent) await checkResult(page, sent, 'touch');
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      check('no sideways scrolling at 390 px', overflow <= 0, overflow);
      await page.screenshot({ path: path.join(OUT, 'page-narrow.png'), fullPage: true });
      await page.setViewportSize({ width: 320, height: 700 });
      const o320 = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      check('no sideways scrolling at 320 px', o320 <= 0, o320);
    });

    await step('an image file', async () => {
      // A dark bag-like shape on a white background, as a product photo
      // would be: the page must invert it to white on black.
      const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="90">' +
        '<rect width="120" height="90" fill="#fff"/>' +
        '<rect x="20" y="30" width="80" height="50" rx="6" fill="#222"/>' +
        '<path d="M40 30 Q60 0 80 30" stroke="#222" stroke-width="8" fill="none"/></svg>';
      const before = await doneCount(page);
      await page.setInputFiles('#file', { name: 'bag.svg', mimeType: 'image/svg+xml', buffer: Buffer.from(svg) });
      await waitUntil(page, (b) => Number(document.getElementById('try-section').dataset.done || 0) > b,
        before, { timeout: 10000 });
      const px = await page.evaluate(() => {
        const d = document.getElementById('preview').getContext('2d').getImageData(0, 0, 28, 28).data;
        let ink = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] > 128) ink++;
        return { ink, corner: d[0], centre: d[4 * (20 * 28 + 14)] };
      });
      check('the image was inverted to white on black', px.corner < 30 && px.centre > 200, JSON.stringify(px));
      check('the image fills the frame like Fashion-MNIST', px.ink > 250, JSON.stringify(px));
      check('both charts drawn for the image',
        (await page.locator('#chart-int8 .track').count()) > 0 && (await page.locator('#chart-fp32 .track').count()) > 0);
      check('no error for the image', await page.locator('#predict-error').isHidden());
    });

    await step('dark mode', async () => {
      await page.setViewportSize({ width: 1280, height: 1000 });
      await page.emulateMedia({ colorScheme: 'dark' });
      await page.waitForTimeout(2200); // one metrics poll redraws the chart
      const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      const m = /rgb\((\d+), (\d+), (\d+)\)/.exec(bg);
      check('dark background in dark mode', m && +m[1] + +m[2] + +m[3] < 150, bg);
      await page.screenshot({ path: path.join(OUT, 'page-dark.png'), fullPage: true });
      await page.emulateMedia({ colorScheme: 'light' });
    });

    await step('reload shows on the page', async () => {
      const before = (await (await fetch(URL0 + '/models')).json()).models[0];
      const dst = path.join(MODELS, before.name + '.safetensors');
      fs.copyFileSync(RELOAD, dst + '.tmp');
      fs.renameSync(dst + '.tmp', dst);
      await waitUntil(page, (v) => {
        const h = document.querySelector('#models .model .ver');
        return h && h.textContent !== 'v' + v;
      }, before.version, { timeout: 15000 });
      const ver = await page.locator('#models .model .ver').textContent();
      check('the model card shows the new version', ver === 'v' + (before.version + 1), ver);
      await waitUntil(page, () => Number(document.getElementById('reloads').textContent) > 0, null,
        { timeout: 6000 });
      check('live panel counts the reload', Number(await page.locator('#reloads').textContent()) >= 1);
    });

    await step('server errors are shown', async () => {
      const name = (await (await fetch(URL0 + '/models')).json()).models[0].name;
      fs.unlinkSync(path.join(MODELS, name + '.safetensors'));
      // Wait until the server unloaded it, then ask the page (which still
      // lists it until its next refresh) to predict.
      for (let i = 0; i < 100; i++) {
        const j = await (await fetch(URL0 + '/models')).json();
        if (j.models.length === 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      await page.click('#predict');
      await page.waitForSelector('#predict-error:not([hidden])', { timeout: 6000 }).catch(() => {});
      const msg = await page.locator('#predict-error').textContent();
      check('the server\'s error is on the page',
        /HTTP 404 .*not found|no model is loaded/.test(msg), msg);
      await page.waitForSelector('#models-empty:not([hidden])', { timeout: 8000 });
      check('the model list says nothing is loaded', await page.locator('#models-empty').isVisible());
    });
  } finally {
    await ctx.close();
  }
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  console.log('browser-test: screenshots in ' + OUT + ' (' + secs + ' s)');
  console.log('browser-test: ' + passed + ' passed, ' + failed + ' failed');
  process.exit(failed ? 1 : 0);
}

main().catch((err) => {
  console.log('browser-test: crashed: ' + (err && err.stack ? err.stack : err));
  console.log('browser-test: ' + passed + ' passed, ' + (failed + 1) + ' failed');
  process.exit(1);
});
