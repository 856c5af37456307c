// Edits: upload-and-edit throughput for a 1024x1024 PNG with a mask (1 and 4 clients), and the
// server's peak resident memory while 4 clients each upload 16 images of 8 MB, printed as peak
// RSS over the bytes in flight (goal: below 1.5). One run, ratios printed.
//
//   node bench/edit_upload.mjs [--bin build/imagesd] [--seconds 4]
import http from 'node:http';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { PNG } from '../tests/integration/node_modules/pngjs/lib/png.js';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const BIN = opt('bin', 'build/imagesd');
const SECONDS = Number(opt('seconds', '4'));

async function start() {
  const dir = mkdtempSync(join(tmpdir(), 'imagesd-bench-'));
  const child = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dir, '--log-level', 'warn',
    '--queue-size', '100', '--max-upload', '900M'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const addr = await new Promise((res, rej) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on http:\/\/([\d.]+):(\d+)/);
      if (m) res({ host: m[1], port: Number(m[2]) });
    });
    child.on('exit', (c) => rej(new Error(`server exited ${c}`)));
  });
  return { ...addr, pid: child.pid, stop: () => new Promise((r) => { child.on('exit', r); child.kill('SIGTERM'); }).then(() => rmSync(dir, { recursive: true, force: true })) };
}

function pngOf(w, h, fill) {
  const p = new PNG({ width: w, height: h });
  fill(p.data);
  return PNG.sync.write(p, { deflateLevel: 1 });
}

function multipart(parts) {
  const boundary = `bench${randomBytes(8).toString('hex')}`;
  const chunks = [];
  for (const p of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"` +
      (p.data ? `; filename="f.png"\r\nContent-Type: image/png\r\n\r\n` : '\r\n\r\n')));
    chunks.push(p.data ?? Buffer.from(p.value), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), type: `multipart/form-data; boundary=${boundary}` };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
function post(srv, { body, type }) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const req = http.request({ host: srv.host, port: srv.port, path: '/v1/images/edits', method: 'POST', agent,
      headers: { 'content-type': type, 'content-length': body.length } }, (res) => {
      let n = 0;
      res.on('data', (c) => { n += c.length; });
      res.on('end', () => (res.statusCode === 200 ? resolve(Number(process.hrtime.bigint() - t0) / 1e6)
        : reject(new Error(`status ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function vmHWM(pid) {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(s.match(/VmHWM:\s+(\d+) kB/)[1]) * 1024;
}
function vmRSS(pid) {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(s.match(/VmRSS:\s+(\d+) kB/)[1]) * 1024;
}

// 1. throughput: 1024x1024 PNG + mask, low quality, b64 out
const image = pngOf(1024, 1024, (d) => { for (let i = 0; i < d.length; i++) d[i] = (i * 7) & 255; });
const mask = pngOf(1024, 1024, (d) => {
  for (let i = 0; i < d.length; i += 4) { const x = (i / 4) % 1024; d[i + 3] = x < 512 ? 0 : 255; }
});
const editBody = () => multipart([{ name: 'model', value: 'gpt-image-1' }, { name: 'prompt', value: 'a window' },
  { name: 'quality', value: 'low' }, { name: 'size', value: '1024x1024' },
  { name: 'image', data: image }, { name: 'mask', data: mask }]);

const srv = await start();
const rows = [];
for (const clients of [1, 4]) {
  let count = 0;
  const deadline = Date.now() + SECONDS * 1000;
  const t0 = Date.now();
  let lat = 0;
  await Promise.all(Array.from({ length: clients }, async () => {
    while (Date.now() < deadline) { lat += await post(srv, editBody()); count++; }
  }));
  rows.push({ clients, perSec: count / ((Date.now() - t0) / 1000), latency: lat / count });
}

// 2. memory: 4 clients x 16 images of 8 MB
const idle = vmRSS(srv.pid);
const eight = [];
for (let i = 0; i < 16; i++) {
  // incompressible pixels: a 1448x1448 RGBA noise PNG is about 8 MB
  eight.push(pngOf(1448, 1448, (d) => randomBytes(d.length).copy(d)));
}
const perClient = eight.reduce((a, b) => a + b.length, 0);
const bodies = Array.from({ length: 4 }, () => multipart([{ name: 'model', value: 'gpt-image-1' },
  { name: 'prompt', value: 'collage' }, { name: 'quality', value: 'low' }, { name: 'size', value: '1024x1024' },
  ...eight.map((data) => ({ name: 'image[]', data }))]));
let peak = 0;
const sampler = setInterval(() => { peak = Math.max(peak, vmRSS(srv.pid)); }, 5);
const tm = Date.now();
await Promise.all(bodies.map((b) => post(srv, b)));
clearInterval(sampler);
const hwm = vmHWM(srv.pid);
const inFlight = 4 * perClient;
await srv.stop();
agent.destroy();

console.log(`imagesd edit uploads — ${new Date().toISOString()} — ${cpus().length} x ${cpus()[0].model}`);
for (const r of rows) console.log(`1024x1024 PNG + mask edit, ${r.clients} client(s): ${r.perSec.toFixed(1)} req/s, ${r.latency.toFixed(1)} ms per request`);
console.log(`4 clients x 16 images x ${(perClient / 16 / 1048576).toFixed(1)} MB: ${(inFlight / 1048576).toFixed(0)} MB in flight, ${((Date.now() - tm) / 1000).toFixed(1)} s`);
console.log(`server RSS: idle ${(idle / 1048576).toFixed(0)} MB, sampled peak ${(peak / 1048576).toFixed(0)} MB, VmHWM ${(hwm / 1048576).toFixed(0)} MB`);
console.log(`peak RSS / bytes in flight = ${(hwm / inFlight).toFixed(2)} (goal < 1.5); without the idle baseline ${((hwm - idle) / inFlight).toFixed(2)}`);
