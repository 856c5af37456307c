// Operating imagesd: API keys through the CLI and HTTP, every auth error body, the secure
// default, per-key rate limits hit and recovered (short windows, waits taken from the server's
// own retry headers), the usage ledger against the traffic sent (and after kill -9), /metrics,
// access logs, config files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { BIN, startServer, postJSON, http } from './support/server.mjs';
import { validate } from './support/schema.mjs';

function cli(args, dataDir) {
  const r = spawnSync(BIN, [...args, '--data-dir', dataDir], { encoding: 'utf8', env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=1' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function newKey(dir, name, extra = []) {
  const r = cli(['keys', 'create', '--name', name, ...extra], dir);
  assert.equal(r.code, 0, r.err);
  const key = r.out.trim();
  assert.match(key, /^sk-[A-Za-z0-9_-]{43}$/);
  return key;
}

function usage(dir, extra = []) {
  const r = cli(['usage', '--json', ...extra], dir);
  assert.equal(r.code, 0, r.err);
  return JSON.parse(r.out);
}

const GEN = { prompt: 'ops', model: 'dall-e-2', size: '256x256', response_format: 'b64_json' };
const MISSING = "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.";
const auth = (key) => ({ authorization: `Bearer ${key}` });

test('key lifecycle: create, use, list, revoke (refused at once)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'imagesd-ops-'));
  const key = newKey(dir, 'app one');
  const srv = await startServer({ dataDir: dir });
  try {
    // missing key: the exact OpenAI body and a WWW-Authenticate header
    let r = await postJSON(srv.url, '/v1/images/generations', GEN);
    assert.equal(r.status, 401);
    assert.deepEqual(r.json, { error: { message: MISSING, type: 'invalid_request_error', param: null, code: null } });
    assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="imagesd"');
    validate('ErrorResponse', r.json);
    // wrong key: masked in the message
    const wrong = `sk-${'x'.repeat(39)}abcd`;
    r = await postJSON(srv.url, '/v1/images/generations', GEN, auth(wrong));
    assert.equal(r.status, 401);
    assert.deepEqual(r.json, { error: {
      message: `Incorrect API key provided: sk-${'*'.repeat(39)}abcd. You can find your API key at https://platform.openai.com/account/api-keys.`,
      type: 'invalid_request_error', param: null, code: 'invalid_api_key' } });
    assert.ok(!r.text.includes(wrong));
    r = await postJSON(srv.url, '/v1/images/generations', GEN, auth('bad apiKey'));
    assert.match(r.json.error.message, /^Incorrect API key provided: bad apiKey\. /);
    // the models routes need a key too; health and image links do not
    assert.equal((await http(`${srv.url}/v1/models`, { method: 'GET' })).status, 401);
    assert.equal((await http(`${srv.url}/healthz`, { method: 'GET' })).status, 200);
    // the SDK with the key
    const client = new OpenAI({ apiKey: key, baseURL: `${srv.url}/v1`, maxRetries: 0 });
    const res = await client.images.generate({ model: 'dall-e-2', prompt: 'with a key', size: '256x256' });
    const img = await fetch(res.data[0].url); // links need no key
    assert.equal(img.status, 200);
    await assert.rejects(new OpenAI({ apiKey: 'sk-nope', baseURL: `${srv.url}/v1`, maxRetries: 0 }).models.list(),
      (e) => e instanceof OpenAI.AuthenticationError && e.code === 'invalid_api_key');
    // HTTP Basic with the key as the password also works (OpenAI's message mentions it)
    r = await postJSON(srv.url, '/v1/images/generations', GEN,
      { authorization: `Basic ${Buffer.from(`:${key}`).toString('base64')}` });
    assert.equal(r.status, 200);
    // list never shows the key, and shows the last use
    let list = JSON.parse(cli(['keys', 'list', '--json'], dir).out);
    assert.equal(list.length, 1);
    assert.equal(list[0].name, 'app one');
    assert.ok(list[0].last_used > 0 && list[0].active);
    assert.ok(!JSON.stringify(list).includes(key.slice(3)));
    // revoke: the very next request is refused
    const rv = cli(['keys', 'revoke', list[0].id], dir);
    assert.equal(rv.code, 0, rv.err);
    r = await postJSON(srv.url, '/v1/images/generations', GEN, auth(key));
    assert.equal(r.status, 401);
    assert.equal(r.json.error.code, 'invalid_api_key');
    list = JSON.parse(cli(['keys', 'list', '--json'], dir).out);
    assert.ok(!list[0].active && list[0].revoked > 0);
    assert.equal(cli(['keys', 'revoke', list[0].id], dir).code, 1, 'revoking twice fails');
    assert.equal(cli(['keys', 'create'], dir).code, 2, '--name is required');
  } finally {
    assert.equal((await srv.stop()).code, 0);
  }
});

test('secure default: no keys on loopback warns; on other addresses it refuses to start', async () => {
  const srv = await startServer();
  try {
    assert.match(srv.stderr, /event=auth_disabled/);
    assert.equal((await postJSON(srv.url, '/v1/images/generations', GEN)).status, 200);
  } finally {
    await srv.stop();
  }
  const dir = mkdtempSync(join(tmpdir(), 'imagesd-ops-'));
  const r = spawnSync(BIN, ['serve', '--listen', '0.0.0.0:0', '--data-dir', dir], { encoding: 'utf8', timeout: 20000 });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /refusing to listen on 0\.0\.0\.0:0 without API keys/);
  const open = await startServer({ args: ['--listen', '0.0.0.0:0', '--insecure-no-auth', 'true'] });
  assert.match(open.stderr, /--insecure-no-auth is set/);
  await open.stop();
});

// Waits as long as the server says (retry-after-ms), then the request passes again.
async function retryAfter(r) {
  const ms = Number(r.headers.get('retry-after-ms'));
  assert.ok(ms > 0 && ms <= 2100, `retry-after-ms ${ms}`);
  await new Promise((res) => setTimeout(res, ms + 20));
}

test('rate limits: requests, images and concurrency; hit, headers, recovered', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'imagesd-ops-'));
  const rk = newKey(dir, 'rpm', ['--rpm', '2']);
  const ik = newKey(dir, 'ipm', ['--ipm', '3']);
  const ck = newKey(dir, 'conc', ['--max-concurrent', '1']);
  const srv = await startServer({ dataDir: dir, args: ['--rate-window', '2', '--mock-delay-ms', '100'] });
  try {
    let r = await postJSON(srv.url, '/v1/images/generations', GEN, auth(rk));
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-ratelimit-limit-requests'), '2');
    assert.equal(r.headers.get('x-ratelimit-remaining-requests'), '1');
    assert.match(r.headers.get('x-ratelimit-reset-requests'), /^\d+(ms|s)$/);
    await postJSON(srv.url, '/v1/images/generations', GEN, auth(rk));
    r = await postJSON(srv.url, '/v1/images/generations', GEN, auth(rk));
    assert.equal(r.status, 429);
    assert.equal(r.json.error.type, 'requests');
    assert.equal(r.json.error.code, 'rate_limit_exceeded');
    assert.match(r.json.error.message, /^Rate limit exceeded for requests per minute on API key key_[0-9a-f]{16} \(rpm\)\. Limit: 2\/2s\. Current: 3\/2s\. Please try again in \d+(ms|s)\.$/);
    assert.ok(Number(r.headers.get('retry-after')) >= 1);
    validate('ErrorResponse', r.json);
    await retryAfter(r);
    assert.equal((await postJSON(srv.url, '/v1/images/generations', GEN, auth(rk))).status, 200, 'recovered');

    r = await postJSON(srv.url, '/v1/images/generations', { ...GEN, n: 2 }, auth(ik));
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-ratelimit-limit-images'), '3');
    assert.equal(r.headers.get('x-ratelimit-remaining-images'), '1');
    r = await postJSON(srv.url, '/v1/images/generations', { ...GEN, n: 2 }, auth(ik));
    assert.equal(r.status, 429);
    assert.match(r.json.error.message, /images per minute .* Limit: 3\/2s\. Current: [34]\/2s\./);
    await retryAfter(r);
    assert.equal((await postJSON(srv.url, '/v1/images/generations', { ...GEN, n: 2 }, auth(ik))).status, 200);
    r = await postJSON(srv.url, '/v1/images/generations', { ...GEN, n: 4 }, auth(ik));
    assert.equal(r.status, 429, 'more images than the limit never pass');

    const both = await Promise.all([1, 2].map(() => postJSON(srv.url, '/v1/images/generations', GEN, auth(ck))));
    const statuses = both.map((x) => x.status).sort();
    assert.deepEqual(statuses, [200, 429]);
    const refused = both.find((x) => x.status === 429);
    assert.match(refused.json.error.message, /concurrent requests .* Limit: 1 at once/);
    assert.equal((await postJSON(srv.url, '/v1/images/generations', GEN, auth(ck))).status, 200, 'slot given back');
  } finally {
    assert.equal((await srv.stop()).code, 0);
  }
});

test('the SDK sees RateLimitError, and its retries honour retry-after-ms', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'imagesd-ops-'));
  const key = newKey(dir, 'sdk', ['--rpm', '1']);
  const srv = await startServer({ dataDir: dir, args: ['--rate-window', '1'] });
  try {
    const strict = new OpenAI({ apiKey: key, baseURL: `${srv.url}/v1`, maxRetries: 0 });
    await strict.images.generate({ model: 'dall-e-2', prompt: 'one', size: '256x256' });
    await assert.rejects(strict.images.generate({ model: 'dall-e-2', prompt: 'two', size: '256x256' }),
      (e) => e instanceof OpenAI.RateLimitError && e.status === 429);
    const patient = new OpenAI({ apiKey: key, baseURL: `${srv.url}/v1`, maxRetries: 2 });
    const t0 = Date.now();
    const res = await patient.images.generate({ model: 'dall-e-2', prompt: 'three', size: '256x256' });
    assert.ok(res.data[0].url);
    assert.ok(Date.now() - t0 < 3000, 'waited the server\'s hint, not the SDK\'s default backoff');
  } finally {
    assert.equal((await srv.stop()).code, 0);
  }
  const rows = usage(dir, ['--by', 'key']);
  assert.equal(rows.length, 1);
  assert.ok(rows[0].requests >= 3 && rows[0].errors >= 1, JSON.stringify(rows));
});

test('the ledger totals equal the traffic sent', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'imagesd-ops-'));
  const a = newKey(dir, 'a');
  const b = newKey(dir, 'b');
  const srv = await startServer({ dataDir: dir });
  const sent = { requests: 0, errors: 0, images: 0 };
  const send = async (key, body, path = '/v1/images/generations') => {
    const r = await postJSON(srv.url, path, body, auth(key));
    sent.requests++;
    if (r.status >= 400) sent.errors++;
    else sent.images += r.json.data.length;
    return r;
  };
  try {
    await Promise.all([
      send(a, { ...GEN, n: 3 }),
      send(a, { prompt: 'gpt', model: 'gpt-image-1', quality: 'low', n: 2 }),
      send(b, { prompt: 'gpt2', model: 'gpt-image-2', quality: 'low' }),
      send(b, { ...GEN, size: '999x999' }),
      send(a, { prompt: '' , model: 'gpt-image-1' }),
      send(b, { prompt: 'x', model: 'nope' }),
      send(a, { prompt: 'stream', model: 'gpt-image-1', quality: 'low', stream: true, partial_images: 1 }).catch(() => {}),
    ]);
    // the stream answer is not JSON: count it by hand
    sent.images += 0;
  } finally {
    assert.equal((await srv.stop()).code, 0);
  }
  const [all] = usage(dir);
  assert.equal(all.requests, 7);
  assert.equal(all.errors, 3);
  assert.equal(all.images, 3 + 2 + 1 + 1, 'n of every successful request, the stream included');
  const byKey = usage(dir, ['--by', 'key']);
  assert.equal(byKey.length, 2);
  assert.deepEqual(byKey.map((r) => r.requests).sort(), [3, 4]);
  const byModel = Object.fromEntries(usage(dir, ['--by', 'model']).map((r) => [r.model, r]));
  assert.equal(byModel['dall-e-2'].requests, 2);
  assert.equal(byModel['gpt-image-1'].requests, 3);
  assert.equal(byModel['gpt-image-1'].output_tokens, 2 * 272 + 272 + 100, 'tokens, partials included');
  const byDay = usage(dir, ['--by', 'day']);
  assert.equal(byDay.length, 1);
  assert.match(byDay[0].day, /^\d{4}-\d{2}-\d{2}$/);
  assert.equal(usage(dir, ['--since', '1m'])[0].requests, 7);
  const future = usage(dir, ['--since', '2999-01-01']);
  assert.equal(future.length, 1, 'the total is one row, of zeros when nothing matches');
  assert.equal(future[0].requests, 0);
  assert.deepEqual(usage(dir, ['--since', '2999-01-01', '--by', 'model']), []);
  assert.equal(cli(['usage', '--by', 'planet'], dir).code, 2);
});

test('kill -9 right after a response: the request is in the ledger', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'imagesd-ops-'));
  const srv = await startServer({ dataDir: dir });
  const r = await postJSON(srv.url, '/v1/images/generations', { prompt: 'durable', model: 'gpt-image-1', quality: 'low', n: 2 });
  assert.equal(r.status, 200);
  srv.child.kill('SIGKILL');
  const exit = await srv.exited;
  assert.equal(exit.signal, 'SIGKILL');
  const [all] = usage(dir);
  assert.equal(all.requests, 1);
  assert.equal(all.images, 2);
  assert.equal(all.output_tokens, 2 * 272);
});

function parseMetrics(text) {
  const values = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$/);
    assert.ok(m, `bad metrics line: ${line}`);
    values.set(m[1] + (m[2] ?? ''), Number(m[3]));
  }
  return values;
}

test('/metrics: admin key only, counters match the traffic; --metrics-listen serves it openly', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'imagesd-ops-'));
  const user = newKey(dir, 'user');
  const admin = newKey(dir, 'ops', ['--admin']);
  const srv = await startServer({ dataDir: dir, args: ['--metrics-listen', '127.0.0.1:0'] });
  try {
    for (let i = 0; i < 3; i++) await postJSON(srv.url, '/v1/images/generations', { ...GEN, n: 2 }, auth(user));
    await postJSON(srv.url, '/v1/images/generations', { ...GEN, n: 0 }, auth(user));
    assert.equal((await http(`${srv.url}/metrics`, { method: 'GET' })).status, 401);
    const forbidden = await http(`${srv.url}/metrics`, { method: 'GET', headers: auth(user) });
    assert.equal(forbidden.status, 403);
    const r = await http(`${srv.url}/metrics`, { method: 'GET', headers: auth(admin) });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
    const m = parseMetrics(r.text);
    assert.equal(m.get('imagesd_requests_total{endpoint="generations",model="dall-e-2",status="200"}'), 3);
    assert.equal(m.get('imagesd_requests_total{endpoint="generations",model="dall-e-2",status="400"}'), 1);
    assert.equal(m.get('imagesd_images_total{endpoint="generations",model="dall-e-2"}'), 6);
    assert.equal(m.get('imagesd_generation_seconds_count{model="dall-e-2"}'), 3);
    assert.equal(m.get('imagesd_queue_wait_seconds_count'), 3);
    assert.ok(m.get('imagesd_response_bytes_total{endpoint="generations"}') > 0);
    assert.equal(m.get('imagesd_queue_depth'), 0);
    assert.ok(m.get('imagesd_workers') >= 1);
    assert.ok(r.text.includes('# TYPE imagesd_request_duration_seconds histogram'));
    // the separate listener: no key needed
    const port = Number(srv.stderr.match(/event=metrics_listening url=http:\/\/127\.0\.0\.1:(\d+)/)?.[1]);
    assert.ok(port > 0, srv.stderr);
    const open = await http(`http://127.0.0.1:${port}/metrics`, { method: 'GET' });
    assert.equal(open.status, 200);
    assert.equal((await http(`http://127.0.0.1:${port}/v1/models`, { method: 'GET' })).status, 404);
  } finally {
    assert.equal((await srv.stop()).code, 0);
  }
});

test('access logs: one line per request with its facts, never keys or prompts; JSON format', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'imagesd-ops-'));
  const key = newKey(dir, 'logs');
  const srv = await startServer({ dataDir: dir, args: ['--log-format', 'json'] });
  const secretPrompt = 'a prompt that must never reach the log 7c1f';
  let r;
  try {
    r = await postJSON(srv.url, '/v1/images/generations', { prompt: secretPrompt, model: 'gpt-image-1', quality: 'low', n: 2 }, auth(key));
    assert.equal(r.status, 200);
  } finally {
    await srv.stop();
  }
  const lines = srv.stderr.trim().split('\n').map((l) => JSON.parse(l));
  const access = lines.filter((l) => l.event === 'access' && l.path === '/v1/images/generations');
  assert.equal(access.length, 1);
  const a = access[0];
  assert.equal(a.request_id, r.headers.get('x-request-id'));
  assert.match(a.key_id, /^key_[0-9a-f]{16}$/);
  assert.deepEqual([a.method, a.status, a.model, a.n, a.size], ['POST', 200, 'gpt-image-1', 2, '1024x1024']);
  assert.ok(a.ms > 0 && a.bytes > 1000);
  assert.ok(!srv.stderr.includes(secretPrompt));
  assert.ok(!srv.stderr.includes(key.slice(3)));
  assert.ok(!srv.stderr.includes(r.json.data[0].b64_json.slice(0, 40)));
});

test('config file: options and a model catalogue entry; bad entries named with their line', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'imagesd-ops-'));
  const file = join(dir, 'imagesd.ini');
  writeFileSync(file, '; imagesd config\nqueue-size = 7\n\n[model "house-style"]\nprofile = gpt-image-1\nowned_by = studio\n');
  const srv = await startServer({ args: ['--config', file] });
  try {
    const models = await http(`${srv.url}/v1/models/house-style`, { method: 'GET' });
    assert.equal(models.json.owned_by, 'studio');
    const r = await postJSON(srv.url, '/v1/images/generations', { prompt: 'x', model: 'house-style', quality: 'low' });
    assert.equal(r.status, 200);
    assert.equal(r.json.quality, 'low');
    assert.ok(r.json.usage, 'gpt-image-1 rules');
  } finally {
    await srv.stop();
  }
  writeFileSync(file, 'queue-size = 7\n[model "x"]\nprofile = gpt-image-9\n');
  await assert.rejects(startServer({ args: ['--config', file] }), /config file .* line 3: model "x": unknown profile 'gpt-image-9'/);
  writeFileSync(file, 'queue-size = lots\n');
  await assert.rejects(startServer({ args: ['--config', file] }), /line 1: queue-size: expected an integer/);
  // precedence: flag > environment > file
  writeFileSync(file, 'default-model = dall-e-3\n');
  const s2 = await startServer({ args: ['--config', file], env: { IMAGESD_DEFAULT_MODEL: 'gpt-image-1' } });
  try {
    const r = await postJSON(s2.url, '/v1/images/generations', { prompt: 'which model', quality: 'low' });
    assert.ok(r.json.usage, 'the environment beat the file');
  } finally {
    await s2.stop();
  }
  const s3 = await startServer({ args: ['--config', file, '--default-model', 'dall-e-2'], env: { IMAGESD_DEFAULT_MODEL: 'gpt-image-1' } });
  try {
    const r = await postJSON(s3.url, '/v1/images/generations', { prompt: 'which model', size: '256x256', response_format: 'b64_json' });
    assert.equal(r.json.usage, undefined, 'the flag beat the environment');
  } finally {
    await s3.stop();
  }
});
