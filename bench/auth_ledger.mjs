// The cost of API-key authentication plus the usage ledger: mock requests at 256x256 (png,
// b64_json) per second with a key and the ledger on, versus no key and --ledger false, in one
// run, alternating the two servers in rounds so that machine noise hits both alike. --clients
// concurrent clients keep the server busy (throughput, not one client's latency); besides
// requests per second it prints the machine's CPU time per request (all processes and the
// kernel's writeback, from /proc/stat), the steadier figure on a shared machine.
// Goal: the ledger and auth cost under 3% at 256x256.
//
//   node bench/auth_ledger.mjs [--bin build/imagesd] [--seconds 3] [--rounds 4] [--clients 4]
//                              [--full key,ledger|key|ledger|none]
import http from 'node:http';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
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
const CLIENTS = Number(opt('clients', '4'));

// CPU jiffies spent by the whole machine (user, nice, system, irq, softirq, steal excluded)
function busyJiffies() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return f[0] + f[1] + f[2] + f[5] + f[6];
}

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
  return { port, key, pid: child.pid, stop: () => new Promise((r) => { child.on('exit', r); child.kill('SIGTERM'); }).then(() => rmSync(dir, { recursive: true, force: true })) };
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

// CPU jiffies (user + system) of one process, all its threads
function procJiffies(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]);
}

// { rps, cpu: machine CPU milliseconds per request, srv: the server's own }
async function rate(srv) {
  let n = 0;
  const t0 = process.hrtime.bigint();
  const j0 = busyJiffies();
  const s0 = procJiffies(srv.pid);
  const deadline = Date.now() + SECONDS * 1000;
  const client = async () => { while (Date.now() < deadline) { await request(srv); n++; } };
  await Promise.all(Array.from({ length: CLIENTS }, client));
  const jiffyMs = 10; // USER_HZ = 100 on Linux
  return {
    rps: n / (Number(process.hrtime.bigint() - t0) / 1e9),
    cpu: ((busyJiffies() - j0) * jiffyMs) / n,
    srv: ((procJiffies(srv.pid) - s0) * jiffyMs) / n,
  };
}

const FULL = (opt('full', 'key,ledger')).split(',');
const bare = await start(['--ledger', 'false'], false);
const full = await start(['--ledger', String(FULL.includes('ledger'))], FULL.includes('key'));
for (let i = 0; i < 20; i++) { await request(full); await request(bare); }
const a = [], b = [];
for (let r = 0; r < ROUNDS; r++) { // ABBA order: whatever favours going first hits both
  if (r % 2 === 0) { a.push(await rate(full)); b.push(await rate(bare)); }
  else { b.push(await rate(bare)); a.push(await rate(full)); }
}
await full.stop();
await bare.stop();
agent.destroy();
const med = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const ra = med(a.map((x) => x.rps)), rb = med(b.map((x) => x.rps));
const ca = med(a.map((x) => x.cpu)), cb = med(b.map((x) => x.cpu));
const sa = med(a.map((x) => x.srv)), sb = med(b.map((x) => x.srv));
const label = FULL.filter((x) => x !== 'none').join(' + ') || 'nothing';
console.log(`imagesd auth + ledger cost — ${new Date().toISOString()} — ${cpus().length} x ${cpus()[0].model}, ${CLIENTS} clients`);
console.log(`with ${label}: ${a.map((x) => x.rps.toFixed(0)).join(' ')} req/s (median ${ra.toFixed(1)}), CPU-ms/request: machine ${ca.toFixed(3)}, server ${sa.toFixed(3)}`);
console.log(`without:  ${b.map((x) => x.rps.toFixed(0)).join(' ')} req/s (median ${rb.toFixed(1)}), CPU-ms/request: machine ${cb.toFixed(3)}, server ${sb.toFixed(3)}`);
const pct = (x, y) => (100 * (x / y - 1)).toFixed(1);
console.log(`cost = ${(100 * (1 - ra / rb)).toFixed(1)}% of throughput; CPU per request +${pct(ca, cb)}% machine, +${pct(sa, sb)}% server (goal < 3%)`);
