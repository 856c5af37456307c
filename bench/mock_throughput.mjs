// Mock generations per second at 256x256 and 1024x1024 (png, b64_json) with 1 and 8 concurrent
// clients, and the share of request time spent rendering and encoding versus everything else
// (validation, queueing, base64, JSON, HTTP, transfer), measured in one run.
//
//   node bench/mock_throughput.mjs [--bin build/imagesd] [--seconds 4]
//
// Render and encode times come from the server's Server-Timing header; request time is what
// the client sees from sending the request to having read the whole body. Ratios are printed,
// not absolute goals: machines differ and are noisy.
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
const SECONDS = Number(opt('seconds', '4'));

async function start(extra = []) {
  const dir = mkdtempSync(join(tmpdir(), 'imagesd-bench-'));
  const child = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dir,
    '--log-level', 'warn', '--queue-size', '1000', ...extra], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise((res, rej) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on http:\/\/([\d.]+):(\d+)/);
      if (m) res({ host: m[1], port: Number(m[2]) });
    });
    child.on('exit', (c) => rej(new Error(`server exited ${c}`)));
  });
  return { ...url, stop: () => new Promise((r) => { child.on('exit', r); child.kill('SIGTERM'); }).then(() => rmSync(dir, { recursive: true, force: true })) };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

function request(srv, body) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const req = http.request({ host: srv.host, port: srv.port, path: '/v1/images/generations', method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        if (res.statusCode !== 200) return reject(new Error(`status ${res.statusCode}: ${Buffer.concat(chunks)}`));
        const timing = Object.fromEntries((res.headers['server-timing'] ?? '').split(',').map((p) => {
          const [k, v] = p.trim().split(';dur=');
          return [k, Number(v)];
        }));
        resolve({ ms, render: timing.render ?? 0, encode: timing.encode ?? 0, queue: timing.queue ?? 0,
          body: timing.body ?? 0, server: timing.total ?? 0, bytes: chunks.reduce((a, c) => a + c.length, 0) });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function run(srv, size, clients) {
  // a different prompt per request: no caching can help
  let n = 0;
  const results = [];
  const deadline = Date.now() + SECONDS * 1000;
  const t0 = Date.now();
  async function client(c) {
    while (Date.now() < deadline) {
      const body = JSON.stringify({ model: 'gpt-image-1', prompt: `benchmark ${c} ${n++}: a lighthouse at dusk`, size: size === 256 ? undefined : `${size}x${size}`, quality: 'low' });
      results.push(await request(srv, size === 256 ? JSON.stringify({ model: 'dall-e-2', prompt: `benchmark ${c} ${n++}`, size: '256x256', response_format: 'b64_json' }) : body));
    }
  }
  await Promise.all(Array.from({ length: clients }, (_, c) => client(c)));
  const wall = (Date.now() - t0) / 1000;
  const sum = (k) => results.reduce((a, r) => a + r[k], 0);
  const req = sum('ms');
  const work = sum('render') + sum('encode');
  return { size, clients, count: results.length, perSec: results.length / wall,
    latency: req / results.length, render: sum('render') / results.length, encode: sum('encode') / results.length,
    other: (req - work) / results.length, otherShare: (req - work) / req, mb: sum('bytes') / results.length / 1e6,
    queue: sum('queue') / results.length, body: sum('body') / results.length,
    server: sum('server') / results.length };
}

const srv = await start();
// warm-up (glyph caches, allocator)
for (let i = 0; i < 5; i++) await request(srv, JSON.stringify({ model: 'gpt-image-1', prompt: `warm ${i}`, quality: 'low' }));
const rows = [];
for (const size of [256, 1024]) for (const clients of [1, 8]) rows.push(await run(srv, size, clients));
await srv.stop();
agent.destroy();

console.log(`imagesd mock throughput — ${new Date().toISOString()} — ${cpus().length} x ${cpus()[0].model}`);
console.log('size      clients  req/s    latency ms  render ms  encode ms  other ms  other share  body MB');
for (const r of rows) {
  console.log(`${String(r.size).padEnd(9)} ${String(r.clients).padEnd(8)} ${r.perSec.toFixed(1).padStart(6)}   ${r.latency.toFixed(2).padStart(9)}  ${r.render.toFixed(2).padStart(9)}  ${r.encode.toFixed(2).padStart(9)}  ${r.other.toFixed(2).padStart(8)}  ${(100 * r.otherShare).toFixed(1).padStart(9)}%  ${r.mb.toFixed(2).padStart(7)}`);
}
const r1 = rows.find((r) => r.size === 1024 && r.clients === 1);
const r8 = rows.find((r) => r.size === 1024 && r.clients === 8);
console.log('\nwhere "other" goes (ms per request): queue wait, JSON+base64 body, server total, client-seen');
for (const r of rows) {
  console.log(`${String(r.size).padEnd(5)} x${String(r.clients).padEnd(3)} queue ${r.queue.toFixed(2)}  body ${r.body.toFixed(2)}  server ${r.server.toFixed(2)}  client ${r.latency.toFixed(2)}  (transfer+HTTP ${(r.latency - r.server).toFixed(2)})`);
}
const serverOther = (r) => (r.server - r.render - r.encode) / r.latency;
console.log(`\n1024x1024, 1 client: everything outside render+encode = ${(100 * r1.otherShare).toFixed(1)}% of request time (goal < 5%),`);
console.log(`  of which inside the server (queue, validation, body, ledger; its Server-Timing total) ${(100 * serverOther(r1)).toFixed(1)}%,`);
console.log(`  and loopback transfer plus this Node.js client's HTTP handling ${(100 * (r1.latency - r1.server) / r1.latency).toFixed(1)}%`);
console.log(`1024x1024: 8 clients / 1 client throughput = ${(r8.perSec / r1.perSec).toFixed(2)}x on ${cpus().length} CPUs`);
