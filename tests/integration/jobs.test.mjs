// The job core seen from outside: a full queue answers 429 with Retry-After, a client that
// disconnects (plain or streaming, running or queued) cancels its job and frees its worker,
// SIGTERM lets a running job finish, refuses waiting ones and exits 0. Progress is observed
// through /healthz, never by sleeping a fixed time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, postJSON, http } from './support/server.mjs';
import { validate } from './support/schema.mjs';

async function health(srv) {
  return (await http(`${srv.url}/healthz`, { method: 'GET' })).json;
}

// Polls /healthz until pred(h) holds, failing after `ms`.
async function until(srv, pred, what, ms = 5000) {
  const deadline = Date.now() + ms;
  let h;
  while (Date.now() < deadline) {
    h = await health(srv);
    if (pred(h)) return h;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}: ${JSON.stringify(h)}`);
}

const SLOW = { model: 'gpt-image-1', prompt: 'slow work', quality: 'low' };

test('a tiny queue: the extra clients get 429 with Retry-After, none hang', async () => {
  const srv = await startServer({ args: ['--workers', '1', '--queue-size', '1', '--mock-delay-ms', '150'] });
  try {
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) =>
      postJSON(srv.url, '/v1/images/generations', { ...SLOW, prompt: `client ${i}` })));
    const ok = results.filter((r) => r.status === 200);
    const busy = results.filter((r) => r.status === 429);
    assert.equal(ok.length + busy.length, 6, results.map((r) => r.status).join());
    assert.equal(ok.length, 2, 'one running + one queued');
    for (const r of busy) {
      assert.equal(r.headers.get('retry-after'), '1');
      assert.equal(r.json.error.type, 'requests');
      assert.equal(r.json.error.code, 'rate_limit_exceeded');
      assert.match(r.json.error.message, /The server is busy/);
      validate('ErrorResponse', r.json);
    }
    const h = await health(srv);
    assert.equal(h.rejected_busy, 4);
    // the SDK sees RateLimitError (retries disabled here)
    const client = new OpenAI({ apiKey: 'sk-test', baseURL: `${srv.url}/v1`, maxRetries: 0 });
    const burst = await Promise.allSettled(Array.from({ length: 4 }, () => client.images.generate(SLOW)));
    assert.ok(burst.some((r) => r.status === 'rejected' && r.reason instanceof OpenAI.RateLimitError));
  } finally {
    assert.equal((await srv.stop()).code, 0);
  }
});

test('a client that disconnects mid-request cancels its job and frees the worker', async () => {
  const srv = await startServer({ args: ['--workers', '1', '--mock-delay-ms', '300'] });
  try {
    const ac = new AbortController();
    const pending = fetch(`${srv.url}/v1/images/generations`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(SLOW), signal: ac.signal,
    }).catch((e) => e);
    await until(srv, (h) => h.busy === 1, 'the job to start');
    ac.abort();
    assert.equal((await pending).name, 'AbortError');
    const t0 = Date.now();
    const h = await until(srv, (x) => x.cancelled === 1 && x.busy === 0, 'cancellation');
    assert.ok(Date.now() - t0 < 1000, 'the worker is free within one second');
    assert.equal(h.completed, 1);
    const r = await postJSON(srv.url, '/v1/images/generations', { ...SLOW, prompt: 'next' });
    assert.equal(r.status, 200);
  } finally {
    assert.equal((await srv.stop()).code, 0);
  }
});

test('a client that disconnects mid-stream cancels its job', async () => {
  const srv = await startServer({ args: ['--workers', '1', '--mock-delay-ms', '300'] });
  try {
    const client = new OpenAI({ apiKey: 'sk-test', baseURL: `${srv.url}/v1`, maxRetries: 0 });
    const stream = await client.images.generate({ ...SLOW, stream: true, partial_images: 3 });
    for await (const e of stream) {
      assert.equal(e.type, 'image_generation.partial_image');
      break; // leaving the loop aborts the response
    }
    await until(srv, (h) => h.cancelled === 1 && h.busy === 0, 'stream cancellation');
    const r = await postJSON(srv.url, '/v1/images/generations', { ...SLOW, prompt: 'after' });
    assert.equal(r.status, 200);
  } finally {
    assert.equal((await srv.stop()).code, 0);
  }
});

test('a queued job whose client leaves is dropped before it runs', async () => {
  const srv = await startServer({ args: ['--workers', '1', '--queue-size', '4', '--mock-delay-ms', '200'] });
  try {
    const first = postJSON(srv.url, '/v1/images/generations', { ...SLOW, prompt: 'first' });
    await until(srv, (h) => h.busy === 1, 'the first job to run');
    const ac = new AbortController();
    const second = fetch(`${srv.url}/v1/images/generations`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...SLOW, prompt: 'second' }), signal: ac.signal,
    }).catch((e) => e);
    await until(srv, (h) => h.queued === 1, 'the second job to wait');
    ac.abort();
    await second;
    await until(srv, (h) => h.cancelled === 1 && h.queued === 0, 'the queued job to be dropped');
    assert.equal((await first).status, 200);
    // the answer reaches the client just before the worker counts the job as completed
    const h = await until(srv, (x) => x.busy === 0 && x.completed >= 1, 'the first job to finish');
    assert.equal(h.completed, 1, 'the dropped job never ran');
  } finally {
    assert.equal((await srv.stop()).code, 0);
  }
});

test('SIGTERM: the running job completes, waiting ones get 503, exit 0', async () => {
  const srv = await startServer({ args: ['--workers', '1', '--queue-size', '4', '--mock-delay-ms', '250'] });
  const running = postJSON(srv.url, '/v1/images/generations', { ...SLOW, prompt: 'running' });
  await until(srv, (h) => h.busy === 1, 'the job to start');
  const waiting = postJSON(srv.url, '/v1/images/generations', { ...SLOW, prompt: 'waiting' });
  await until(srv, (h) => h.queued === 1, 'the second job to wait');
  srv.child.kill('SIGTERM');
  const [a, b] = await Promise.all([running, waiting]);
  assert.equal(a.status, 200, a.text);
  assert.ok(a.json.data[0].b64_json.length > 1000);
  assert.equal(b.status, 503);
  assert.equal(b.json.error.code, 'server_shutting_down');
  assert.equal(b.headers.get('retry-after'), '1');
  const r = await srv.exited; // no second signal: that one would end the process at once
  await srv.stop();
  assert.equal(r.code, 0, srv.stderr.slice(-2000));
  assert.match(srv.stderr, /event=stopping signal=SIGTERM/);
  assert.match(srv.stderr, /event=stopped/);
});

test('a job running past the request timeout fails with 504 and frees its worker', async () => {
  const srv = await startServer({ args: ['--workers', '1', '--mock-delay-ms', '600', '--request-timeout', '1'] });
  try {
    const r = await postJSON(srv.url, '/v1/images/generations', SLOW);
    assert.equal(r.status, 504);
    assert.equal(r.json.error.code, 'timeout');
    assert.equal(r.json.error.type, 'server_error');
    assert.equal(r.headers.get('x-should-retry'), 'false');
    const h = await until(srv, (x) => x.busy === 0, 'the worker to be free');
    assert.equal(h.timed_out, 1);
  } finally {
    assert.equal((await srv.stop()).code, 0);
  }
});
