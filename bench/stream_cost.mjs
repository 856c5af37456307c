// Streaming on the mock generator at 1024x1024 (gpt-image-1, png):
//  1. time to the first partial image and to the completed event with partial_images: 3;
//  2. the cost of streaming versus a plain request for the same work: stream: true with
//     partial_images: 0 (one completed event carrying the image) against stream: false with
//     b64_json (the same image in a JSON body). Goal: within 5%.
// One server; the modes alternate request by request so machine noise hits them alike; medians.
//
//   node bench/stream_cost.mjs [--bin build/imagesd] [--requests 30]
import http from 'node:http';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const BIN = opt('bin', 'build/imagesd');
const REQUESTS = Number(opt('requests', '30'));

const dir = mkdtempSync(join(tmpdir(), 'imagesd-bench-'));
const child = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dir, '--log-level', 'warn'],
  { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise((res, rej) => {
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
    const m = out.match(/listening on http:\/\/[\d.]+:(\d+)/);
    if (m) res(Number(m[1]));
  });
  child.on('exit', (c) => rej(new Error(`server exited ${c}`)));
});

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
let seq = 0;

// Sends one request; resolves with the milliseconds to the first partial event (or null), to
// the completed event (stream) or the end of the body (plain), and the bytes received.
function run(body) {
  const data = JSON.stringify({ model: 'gpt-image-1', size: '1024x1024', prompt: `stream bench ${seq++}`, ...body });
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const ms = () => Number(process.hrtime.bigint() - t0) / 1e6;
    let first = null, completed = null, bytes = 0, tail = '';
    const req = http.request({
      host: '127.0.0.1', port, path: '/v1/images/generations', method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
    }, (res) => {
      if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`));
      res.setEncoding('latin1');
      res.on('data', (chunk) => {
        bytes += chunk.length;
        // event names are short; keep a little of the previous chunk in case one is split
        const text = tail + chunk;
        if (first === null && text.includes('event: image_generation.partial_image')) first = ms();
        if (completed === null && text.includes('event: image_generation.completed')) completed = ms();
        tail = chunk.slice(-64);
      });
      res.on('end', () => resolve({ first, done: completed ?? ms(), bytes }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

const modes = {
  partials: { stream: true, partial_images: 3 },
  stream: { stream: true, partial_images: 0 },
  plain: {}, // GPT image models always answer b64_json
};
const results = { partials: [], stream: [], plain: [] };
for (let i = 0; i < 3; i++) for (const m of Object.keys(modes)) await run(modes[m]); // warm-up
for (let i = 0; i < REQUESTS; i++) {
  const order = i % 2 ? ['plain', 'stream', 'partials'] : ['partials', 'stream', 'plain'];
  for (const m of order) results[m].push(await run(modes[m]));
}
agent.destroy();
await new Promise((r) => { child.on('exit', r); child.kill('SIGTERM'); });
rmSync(dir, { recursive: true, force: true });

const med = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const f = (x) => x.toFixed(1);
const p = results.partials, s = results.stream, q = results.plain;
console.log(`imagesd streaming — ${new Date().toISOString()} — ${cpus().length} x ${cpus()[0].model}`);
console.log(`mock gpt-image-1 1024x1024 png, ${REQUESTS} requests per mode, one client, medians`);
console.log(`partial_images 3: first partial ${f(med(p.map((r) => r.first)))} ms, completed ${f(med(p.map((r) => r.done)))} ms, ${(med(p.map((r) => r.bytes)) / 1e6).toFixed(2)} MB`);
const ms = med(s.map((r) => r.done)), mq = med(q.map((r) => r.done));
console.log(`stream, no partials: completed ${f(ms)} ms, ${(med(s.map((r) => r.bytes)) / 1e6).toFixed(2)} MB`);
console.log(`plain b64_json:      body end  ${f(mq)} ms, ${(med(q.map((r) => r.bytes)) / 1e6).toFixed(2)} MB`);
console.log(`streaming cost = ${(100 * (ms / mq - 1)).toFixed(1)}% (goal within 5%)`);
