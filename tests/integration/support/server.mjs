// Starts the real imagesd binary on an ephemeral port with a fresh data directory and waits
// for its readiness line ("listening on http://HOST:PORT") on stdout: never a sleep.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const BIN = resolve(process.env.IMAGESD_BIN ?? 'build/asan/imagesd');

export async function startServer({ args = [], env = {}, dataDir, timeoutMs = 20000 } = {}) {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), 'imagesd-it-'));
  const child = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dir, ...args], {
    env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((res) => child.on('exit', (code, signal) => res({ code, signal })));
  const url = await new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`no readiness line in ${timeoutMs} ms\n${stderr}`)), timeoutMs);
    child.stdout.on('data', (d) => {
      stdout += d;
      const m = stdout.match(/listening on (http:\/\/\S+)\n/);
      if (m) { clearTimeout(timer); res(m[1]); }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      rej(new Error(`imagesd exited (${code ?? signal}) before it was ready\n${stderr}`));
    });
  });
  return {
    url,
    dir,
    child,
    exited,
    get stderr() { return stderr; },
    // SIGTERM, wait for the exit, remove the data dir unless the caller owns it.
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const r = await exited;
      if (!dataDir) rmSync(dir, { recursive: true, force: true });
      return r;
    },
  };
}

// Raw HTTP helper: returns { status, headers, text, json }.
export async function http(url, { method = 'POST', headers = {}, body } = {}) {
  const res = await fetch(url, { method, headers, body });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, headers: res.headers, text, json };
}

export async function postJSON(base, path, obj, extraHeaders = {}) {
  return http(base + path, {
    headers: { 'content-type': 'application/json', ...extraHeaders },
    body: typeof obj === 'string' ? obj : JSON.stringify(obj),
  });
}
