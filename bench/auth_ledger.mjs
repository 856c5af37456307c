// The cost of API-key authentication plus the usage ledger: mock requests at 256x256 (png,
// b64_json) per second with a key and the ledger on, versus no key and --ledger false, in one
// run, alternating the two servers in rounds so that machine noise hits both alike.
// Goal: the ledger and auth cost under 3% at 256x256.
//
//   node bench/auth_ledger.mjs [--bin build/imagesd] [--seconds 3] [--rounds 4]
import http from 'node:http';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const BIN = opt('bin', 'build/imagesd');
const SECONDS = Number(opt('seconds', '3'));
const ROUNDS = Number(opt('rounds', '4'));

async function start(extra, withKey) {
  const dir = mkdtempSync(join(tmpdir(), 'imagesd-bench-'));
  let key = null;
  if (withKey) {
    const r = spawnSync(BIN, ['keys', 'create', '--name', 'bench', '--data-dir', dir], { encoding: 'utf8' });
    key = r.stdout.trim();
  }
  const child = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dir, '--log-level', 'warn', ...extra],
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
  return { port, key, stop: () => new Promise((r) => { child.on('exit', r); child.kill('SIGTERM'); }).then(() => rmSync(dir, { recursive: true, force: true })) };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
let seq = 0;
function request(srv) {
  const body = JSON.stringify({ model: 'dall-e-2', prompt: `bench ${seq++}`, size: '256x256', response_format: 'b64_json' });
  const headers = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
  if (srv.key) headers.authorization = `Bearer ${srv.key}`;
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: srv.port, path: '/v1/images/generations', method: 'POST', agent, headers }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function rate(srv) {
  let n = 0;
  const t0 = process.hrtime.bigint();
  const deadline = Date.now() + SECONDS * 1000;
  while (Date.now() < deadline) { await request(srv); n++; }
  return n / (Number(process.hrtime.bigint() - t0) / 1e9);
}

const FULL = (opt('full', 'key,ledger')).split(',');
const full = await start(['--ledger', String(FULL.includes('ledger'))], FULL.includes('key'));
const bare = await start(['--ledger', 'false'], false);
for (let i = 0; i < 20; i++) { await request(full); await request(bare); }
const a = [], b = [];
for (let r = 0; r < ROUNDS; r++) {
  a.push(await rate(full));
  b.push(await rate(bare));
}
await full.stop();
await bare.stop();
agent.destroy();
const med = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const ra = med(a), rb = med(b);
console.log(`imagesd auth + ledger cost — ${new Date().toISOString()} — ${cpus().length} x ${cpus()[0].model}`);
console.log(`key + ledger: ${a.map((x) => x.toFixed(0)).join(' ')} req/s (median ${ra.toFixed(1)})`);
console.log(`no key, no ledger: ${b.map((x) => x.toFixed(0)).join(' ')} req/s (median ${rb.toFixed(1)})`);
console.log(`cost = ${(100 * (1 - ra / rb)).toFixed(1)}% of throughput (goal < 3%), ${(1e6 / ra - 1e6 / rb).toFixed(0)} µs per request`);
