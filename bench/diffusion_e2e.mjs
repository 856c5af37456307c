// The diffusion generator end to end on a full-size random-weight SD1.5 checkpoint (made with
// tools/mksdmodel when missing; never downloaded), in one run:
//  1. seconds for one 512x512 image through the server with 4 and 20 steps (dall-e-2 profile,
//     b64_json; steps given with the `steps` extension field);
//  2. time to the first partial image and to the completed event (gpt-image-1 profile, 1024x1024
//     from a 512x512 generation, 4 steps, partial_images 3);
//  3. the overhead of the server path over the bare engine call: the same 4-step request through
//     the server and through `imagesd engine txt2img` (its own generation time), alternated
//     (wall-clock pairs: noisy on a throttled VM), and, exact within one request, the time the
//     client waited beyond the generator's run (the server's Server-Timing `render`): HTTP,
//     validation, queueing, PNG encoding and the JSON body; goal under 2%;
//  4. the server's peak RSS (VmHWM) when 2 requests arrive together, with concurrency 1 (the
//     default: the second waits for the first) and 2 (two generations at once, 1 thread each).
//
//   node bench/diffusion_e2e.mjs [--bin build/imagesd] [--model /tmp/isd-bench-sd15-f16.safetensors]
//                                [--pairs 2] [--parts overhead,20,stream,rss]
import http from 'node:http';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join, dirname, resolve } from 'node:path';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const BIN = resolve(opt('bin', 'build/imagesd'));
const TOOLS = join(dirname(BIN), 'tools');
const MODEL = opt('model', '/tmp/isd-bench-sd15-f16.safetensors');
const PAIRS = Number(opt('pairs', '2'));
const PARTS = opt('parts', 'overhead,20,stream,rss').split(',');
const PROMPT = 'a lighthouse on a cliff at dawn, oil painting';
const work = mkdtempSync(join(tmpdir(), 'imagesd-bench-diffusion-'));
const log = (...a) => console.log(...a);

function tool(name, ...a) {
  const r = spawnSync(join(TOOLS, name), a, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${name} failed: ${r.stderr}`);
}
if (!existsSync(MODEL)) {
  log(`writing ${MODEL} (random SD1.5 weights, F16, about 2 GB)`);
  tool('mksdmodel', '--preset', 'sd15', '--layout', 'single', '--dtype', 'f16', '-o', MODEL);
}
const TOK = join(work, 'tok');
tool('mkclipvocab', TOK, 'full');

function config(extra = '') {
  const entry = (name, profile) => `[model "${name}"]
profile = ${profile}
generator = diffusion
checkpoint = ${MODEL}
tokenizer = ${TOK}
native_size = 512
${extra}
`;
  const path = join(work, `imagesd-${Math.random().toString(36).slice(2)}.ini`);
  writeFileSync(path, entry('sd15-512', 'dall-e-2') + entry('sd15-gpt', 'gpt-image-1'));
  return path;
}

async function start(extra) {
  const dir = mkdtempSync(join(work, 'data-'));
  const child = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dir, '--config', config(extra),
    '--log-level', 'warn', '--request-timeout', '3600'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((res, rej) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on http:\/\/[\d.]+:(\d+)/);
      if (m) res(Number(m[1]));
    });
    child.on('exit', (c) => rej(new Error(`server exited ${c}`)));
  });
  return {
    port,
    hwmMB: () => Number(readFileSync(`/proc/${child.pid}/status`, 'utf8').match(/VmHWM:\s+(\d+)/)[1]) / 1024,
    stop: () => new Promise((r) => { child.on('exit', r); child.kill('SIGTERM'); }),
  };
}

// One request; resolves { ms, first (ms to the first partial event or null), render (the
// generator's ms from Server-Timing, plain responses) }.
function request(srv, body) {
  const data = JSON.stringify(body);
  return new Promise((resolvePromise, reject) => {
    const t0 = process.hrtime.bigint();
    const ms = () => Number(process.hrtime.bigint() - t0) / 1e6;
    let first = null;
    const req = http.request({
      host: '127.0.0.1', port: srv.port, path: '/v1/images/generations', method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
    }, (res) => {
      let text = '';
      res.setEncoding('latin1');
      res.on('data', (c) => {
        if (first === null && c.includes('image_generation.partial_image')) first = ms();
        if (res.statusCode !== 200) text += c;
      });
      const timing = String(res.headers['server-timing'] ?? '');
      const render = Number((timing.match(/render;dur=([\d.]+)/) ?? [])[1]);
      res.on('end', () => (res.statusCode === 200 ? resolvePromise({ ms: ms(), first, render })
        : reject(new Error(`status ${res.statusCode}: ${text.slice(0, 300)}`))));
    });
    req.setTimeout(0);
    req.on('error', reject);
    req.end(data);
  });
}

const plain = (steps, seed) => ({ model: 'sd15-512', prompt: PROMPT, size: '512x512', response_format: 'b64_json', steps, seed });

// The bare engine: `imagesd engine txt2img`, the generation time it prints.
function engineSeconds(steps, seed) {
  const r = spawnSync(BIN, ['engine', 'txt2img', '--model', MODEL, '--tokenizer', TOK, '--prompt', PROMPT,
    '--width', '512', '--height', '512', '--steps', String(steps), '--seed', String(seed),
    '--sampler', 'dpm++2m', '--scheduler', 'karras', '--guidance', '7.5', '-o', join(work, 'engine.png')],
  { encoding: 'utf8' });
  const m = r.stderr.match(/wrote .* \(seed \d+, ([\d.]+) s\)/);
  if (r.status !== 0 || !m) throw new Error(`engine txt2img failed: ${r.stderr}`);
  return Number(m[1]);
}

log(`imagesd diffusion end to end — ${new Date().toISOString()} — ${cpus().length} x ${cpus()[0].model}`);
log(`model ${MODEL} (random SD1.5 weights, F16), dpm++2m karras, CFG 7.5, 2 threads`);
const srv = await start();
await request(srv, plain(1, 1)); // warm the page cache

// 3: server vs bare engine, alternated
if (PARTS.includes('overhead')) {
const server4 = [], engine4 = [], outside = [];
for (let i = 0; i < PAIRS; i++) {
  engine4.push(engineSeconds(4, 100 + i));
  const r = await request(srv, plain(4, 100 + i));
  server4.push(r.ms / 1000);
  outside.push({ ms: r.ms - r.render, ratio: (r.ms - r.render) / r.render });
}
const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
log(`512x512, 4 steps: server ${server4.map((x) => x.toFixed(1)).join(' ')} s (median ${med(server4).toFixed(1)}); `
  + `bare engine ${engine4.map((x) => x.toFixed(1)).join(' ')} s (median ${med(engine4).toFixed(1)})`);
const pairs = server4.map((s, i) => s / engine4[i] - 1);
log(`server path overhead, wall-clock pairs: ${pairs.map((x) => (100 * x).toFixed(1) + '%').join(' ')} (goal < 2%)`);
log(`server path overhead, beyond the generator in the same request: ${outside.map((o) => `${o.ms.toFixed(0)} ms = ${(100 * o.ratio).toFixed(2)}%`).join(', ')} (goal < 2%)`);
}

// 1: 20 steps
if (PARTS.includes('20')) {
  const s20 = (await request(srv, plain(20, 7))).ms / 1000;
  log(`512x512, 20 steps: server ${s20.toFixed(1)} s`);
}

// 2: streaming
if (PARTS.includes('stream')) {
const st = await request(srv, { model: 'sd15-gpt', prompt: PROMPT, size: '1024x1024', stream: true, partial_images: 3, steps: 4, seed: 5 });
log(`stream 1024x1024 (generated at 512x512), 4 steps, partial_images 3: first partial ${(st.first / 1000).toFixed(1)} s, completed ${(st.ms / 1000).toFixed(1)} s`);
}
await srv.stop();

// 4: peak RSS, two requests at once
for (const [label, extra] of !PARTS.includes('rss') ? [] : [['concurrency 1', ''], ['concurrency 2', 'concurrency = 2\nthreads = 1']]) {
  const s = await start(extra);
  const t0 = Date.now();
  await Promise.all([request(s, plain(4, 1)), request(s, plain(4, 2))]);
  log(`2 requests at once, ${label}: both done in ${((Date.now() - t0) / 1000).toFixed(1)} s, server peak RSS ${s.hwmMB().toFixed(0)} MB`);
  await s.stop();
}
rmSync(work, { recursive: true, force: true });
