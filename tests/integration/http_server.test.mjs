// The HTTP surface around the API: routing errors, hostile bodies (the server must answer each
// with an OpenAI-style error and keep serving), signed image links and their expiry sweep,
// health, shutdown.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, postJSON, http } from './support/server.mjs';
import { validate } from './support/schema.mjs';

let srv;
before(async () => { srv = await startServer({ args: ['--max-body', '64k'] }); });
after(async () => {
  const r = await srv.stop();
  assert.equal(r.code, 0, `server exit ${JSON.stringify(r)}\n${srv.stderr.slice(-3000)}`);
});

const GOOD = { prompt: 'still serving', model: 'dall-e-2', size: '256x256', response_format: 'b64_json' };

async function stillServes() {
  const r = await postJSON(srv.url, '/v1/images/generations', GOOD);
  assert.equal(r.status, 200, r.text);
}

// Sends raw bytes and returns the raw response text (for bodies fetch() cannot produce). The
// sending side stays open: a client that half-closes counts as gone (docs/http.md).
function raw(url, bytes) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(port), hostname, () => s.write(bytes));
    let out = '';
    s.on('data', (d) => { out += d; });
    s.on('end', () => resolve(out));
    s.on('error', reject);
  });
}

function rawRequest(body, extra = '') {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body);
  return Buffer.concat([Buffer.from(
    `POST /v1/images/generations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${b.length}\r\nConnection: close\r\n${extra}\r\n`), b]);
}

function parseRaw(text) {
  const status = Number(text.split(' ')[1]);
  const body = text.slice(text.indexOf('\r\n\r\n') + 4);
  return { status, json: JSON.parse(body) };
}

test('unknown route → 404, wrong method → 405, both with error bodies', async () => {
  let r = await http(`${srv.url}/v1/images/nope`, { method: 'POST', body: '{}' });
  assert.equal(r.status, 404);
  assert.deepEqual(r.json, { error: { message: 'Invalid URL (POST /v1/images/nope)', type: 'invalid_request_error', param: null, code: null } });
  validate('ErrorResponse', r.json);
  r = await http(`${srv.url}/v1/images/generations`, { method: 'GET' });
  assert.equal(r.status, 405);
  assert.deepEqual(r.json, { error: { message: 'Invalid method for URL (GET /v1/images/generations)', type: 'invalid_request_error', param: null, code: null } });
  r = await http(`${srv.url}/v1/models`, { method: 'DELETE' });
  assert.equal(r.status, 405);
});

test('CORS preflight', async () => {
  const r = await http(`${srv.url}/v1/images/generations`, {
    method: 'OPTIONS', headers: { origin: 'http://app.example', 'access-control-request-headers': 'authorization, content-type' },
  });
  assert.equal(r.status, 204);
  assert.equal(r.headers.get('access-control-allow-origin'), '*');
  assert.match(r.headers.get('access-control-allow-methods'), /POST/);
  assert.equal(r.headers.get('access-control-allow-headers'), 'authorization, content-type');
});

test('body over the limit → 413 (declared length, before reading it)', async () => {
  const r = await postJSON(srv.url, '/v1/images/generations', JSON.stringify({ prompt: 'x'.repeat(70000) }));
  assert.equal(r.status, 413);
  assert.equal(r.json.error.code, 'request_too_large');
  assert.equal(r.json.error.message, 'Request body too large for /v1/images/generations: the limit is 65536 bytes.');
  validate('ErrorResponse', r.json);
  await stillServes();
});

test('chunked body over the limit → 413', async () => {
  const chunk = 'x'.repeat(16384);
  let body = '';
  for (let i = 0; i < 6; i++) body += `${chunk.length.toString(16)}\r\n${chunk}\r\n`;
  body += '0\r\n\r\n';
  const text = await raw(srv.url, Buffer.from(
    'POST /v1/images/generations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
    `Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n${body}`));
  const r = parseRaw(text);
  assert.equal(r.status, 413);
  assert.equal(r.json.error.code, 'request_too_large');
  await stillServes();
});

test('deeply nested JSON', async () => {
  const r = await postJSON(srv.url, '/v1/images/generations', '['.repeat(30000) + ']'.repeat(30000));
  assert.equal(r.status, 400);
  assert.match(r.json.error.message, /^We could not parse the JSON body/);
  const r2 = await postJSON(srv.url, '/v1/images/generations', `{"prompt":"x","user":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`);
  assert.equal(r2.status, 400);
  await stillServes();
});

test('invalid UTF-8 and NUL bytes', async () => {
  let r = parseRaw(await raw(srv.url, rawRequest(Buffer.from([...Buffer.from('{"prompt":"'), 0xff, 0xfe, ...Buffer.from('","model":"gpt-image-1"}')]))));
  assert.equal(r.status, 400);
  assert.match(r.json.error.message, /^We could not parse the JSON body/);
  r = parseRaw(await raw(srv.url, rawRequest(Buffer.from([...Buffer.from('{"prompt":"a'), 0, ...Buffer.from('b","model":"gpt-image-1"}')]))));
  assert.equal(r.status, 400);
  r = await postJSON(srv.url, '/v1/images/generations', '{"prompt":"a\\u0000b","model":"gpt-image-1"}');
  assert.equal(r.status, 400);
  validate('ErrorResponse', r.json);
  // an invalid UTF-8 sequence inside an unknown key must come back as valid JSON
  r = parseRaw(await raw(srv.url, rawRequest(Buffer.from([...Buffer.from('{"'), 0xc3, 0x28, ...Buffer.from('":1}')]))));
  assert.equal(r.status, 400);
  await stillServes();
});

test('absurd numbers', async () => {
  for (const [text, code] of [
    ['{"prompt":"x","model":"gpt-image-1","n":1e400}', null],
    ['{"prompt":"x","model":"gpt-image-1","n":-99999999999999999999999}', 'integer_below_min_value'],
    ['{"prompt":"x","model":"gpt-image-1","output_compression":1e308}', 'invalid_type'],
    ['{"prompt":"x","model":"gpt-image-1","partial_images":-0.0}', 'invalid_type'],
  ]) {
    const r = await postJSON(srv.url, '/v1/images/generations', text);
    assert.equal(r.status, 400, text);
    assert.equal(r.json.error.code, code, `${text}: ${r.text}`);
  }
  await stillServes();
});

test('garbage requests do not hurt the server', async () => {
  const junk = [
    'GARBAGE\r\n\r\n',
    'POST /v1/images/generations HTTP/1.1\r\nContent-Length: -5\r\n\r\n',
    'POST /v1/images/generations HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n',
    `GET /${'a'.repeat(20000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
    'POST /v1/images/generations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{"pro',
  ];
  await Promise.all(junk.map((j) => raw(srv.url, Buffer.from(j)).catch(() => '')));
  await stillServes();
});

test('signed links: tampered or malformed → 403, unknown file → 403/404', async () => {
  const res = await postJSON(srv.url, '/v1/images/generations', { prompt: 'link', model: 'dall-e-2', size: '256x256' });
  const url = new URL(res.json.data[0].url);
  assert.match(url.pathname, /^\/images\/img_[0-9a-f]{32}\.png$/);
  const ok = await fetch(url);
  assert.equal(ok.status, 200);
  const tampered = new URL(url);
  tampered.searchParams.set('expires', String(Number(url.searchParams.get('expires')) + 1));
  let r = await http(tampered.href, { method: 'GET' });
  assert.equal(r.status, 403);
  validate('ErrorResponse', r.json);
  const other = new URL(url);
  other.pathname = url.pathname.replace(/img_(.)/, (m, c) => `img_${c === '0' ? '1' : '0'}`);
  r = await http(other.href, { method: 'GET' });
  assert.equal(r.status, 403);
  r = await http(`${srv.url}/images/${encodeURIComponent('../secret.key')}`, { method: 'GET' });
  assert.equal(r.status, 403);
  r = await http(url.origin + url.pathname, { method: 'GET' });
  assert.equal(r.status, 403);
});

test('health endpoint reports the job counters', async () => {
  const r = await http(`${srv.url}/healthz`, { method: 'GET' });
  assert.equal(r.status, 200);
  assert.equal(r.json.status, 'ok');
  for (const k of ['workers', 'busy', 'queued', 'completed', 'cancelled', 'rejected_busy']) {
    assert.equal(typeof r.json[k], 'number', k);
  }
  assert.ok(r.json.completed > 0);
});

test('expired links → 404 and the sweep deletes the files', async () => {
  const s2 = await startServer({ args: ['--url-ttl', '1', '--sweep-interval', '1'] });
  try {
    const res = await postJSON(s2.url, '/v1/images/generations', { prompt: 'short lived', model: 'dall-e-2', size: '256x256' });
    assert.equal(res.status, 200, res.text);
    const link = res.json.data[0].url;
    const file = new URL(link).pathname.split('/').pop();
    assert.ok(existsSync(join(s2.dir, 'images', file)));
    const deadline = Date.now() + 10000;
    let status = 200;
    while (status === 200 && Date.now() < deadline) {
      status = (await fetch(link)).status;
      if (status === 200) await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(status, 404);
    const r = await http(link, { method: 'GET' });
    assert.equal(r.json.error.message, 'This image link has expired.');
    while (existsSync(join(s2.dir, 'images', file)) && Date.now() < deadline) {
      await new Promise((r2) => setTimeout(r2, 200));
    }
    assert.deepEqual(readdirSync(join(s2.dir, 'images')), []);
  } finally {
    const r = await s2.stop();
    assert.equal(r.code, 0);
  }
});

test('bad options and configs are refused with a clear message', async () => {
  await assert.rejects(startServer({ args: ['--workers', 'many'] }), /flag --workers: workers: expected an integer in 0\.\.256, got 'many'/);
  await assert.rejects(startServer({ args: ['--listen', 'nonsense'] }), /listen address 'nonsense': expected HOST:PORT/);
  await assert.rejects(startServer({ args: ['--bogus'] }), /unknown option '--bogus'/);
  await assert.rejects(startServer({ env: { IMAGESD_MAX_BODY: '12Q' } }), /environment IMAGESD_MAX_BODY: max-body: expected a size in bytes/);
});
