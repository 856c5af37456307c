// Streaming (§6) through the official SDK (async iteration) and raw SSE: event order, types,
// indices, fields, decoded images, usage; n > 1; errors before and after the stream starts;
// keep-alive comments.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, postJSON } from './support/server.mjs';
import { validate } from './support/schema.mjs';
import { decode, fromB64, alphaStats } from './support/images.mjs';

let srv, client;
before(async () => {
  srv = await startServer();
  client = new OpenAI({ apiKey: 'sk-test', baseURL: `${srv.url}/v1`, maxRetries: 0 });
});
after(async () => {
  const r = await srv.stop();
  assert.equal(r.code, 0, `server exit ${JSON.stringify(r)}\n${srv.stderr.slice(-3000)}`);
});

async function collect(stream) {
  const events = [];
  for await (const e of stream) events.push(e);
  return events;
}

// mean absolute difference of two decoded images of the same size
function mad(a, b) {
  let s = 0;
  for (let i = 0; i < a.data.length; i++) s += Math.abs(a.data[i] - b.data[i]);
  return s / a.data.length;
}

for (const k of [0, 1, 2, 3]) {
  test(`generation stream with partial_images: ${k}`, async () => {
    const stream = await client.images.generate({
      model: 'gpt-image-1', prompt: 'a stream of partial images', stream: true, partial_images: k, quality: 'medium',
    });
    const events = await collect(stream);
    assert.equal(events.length, k + 1);
    const images = [];
    events.forEach((e, i) => {
      const last = i === events.length - 1;
      assert.equal(e.type, last ? 'image_generation.completed' : 'image_generation.partial_image');
      validate(last ? 'ImageGenCompletedEvent' : 'ImageGenPartialImageEvent', e);
      if (!last) assert.equal(e.partial_image_index, i);
      assert.equal(e.size, '1024x1024');
      assert.equal(e.quality, 'medium');
      assert.equal(e.background, 'opaque');
      assert.equal(e.output_format, 'png');
      assert.ok(Math.abs(e.created_at - Date.now() / 1000) < 60);
      const img = decode(fromB64(e.b64_json));
      assert.deepEqual([img.format, img.width, img.height], ['png', 1024, 1024]);
      images.push(img);
    });
    const done = events.at(-1);
    assert.equal(done.usage.output_tokens, 1056 + 100 * k);
    assert.equal(done.usage.total_tokens, done.usage.input_tokens + done.usage.output_tokens);
    assert.equal(done.usage.input_tokens, done.usage.input_tokens_details.text_tokens);
    // coarse to sharp: each partial is closer to the final image than the one before
    for (let i = 1; i < k; i++) assert.ok(mad(images[i], images[k]) < mad(images[i - 1], images[k]));
  });
}

test('the completed image of a stream equals the non-streaming image', async () => {
  const req = { model: 'gpt-image-1-mini', prompt: 'same work', quality: 'low', output_format: 'webp', output_compression: 80 };
  const plain = await client.images.generate(req);
  const events = await collect(await client.images.generate({ ...req, stream: true, partial_images: 2 }));
  assert.equal(events.at(-1).b64_json, plain.data[0].b64_json);
  assert.equal(events.at(-1).output_format, 'webp');
  assert.equal(decode(fromB64(events[0].b64_json)).format, 'webp');
});

test('n > 1: each image streams its partials then its completed event', async () => {
  const events = await collect(await client.images.generate({
    model: 'gpt-image-2', prompt: 'two', n: 2, stream: true, partial_images: 2, quality: 'low', size: '1536x864',
  }));
  assert.deepEqual(events.map((e) => e.type), [
    'image_generation.partial_image', 'image_generation.partial_image', 'image_generation.completed',
    'image_generation.partial_image', 'image_generation.partial_image', 'image_generation.completed']);
  assert.deepEqual(events.map((e) => e.partial_image_index), [0, 1, undefined, 0, 1, undefined]);
  const [a, b] = [events[2], events[5]];
  assert.notEqual(a.b64_json, b.b64_json);
  assert.ok(a.usage.input_tokens > 0);
  assert.equal(b.usage.input_tokens, 0, 'input tokens are reported once');
  const plain = await client.images.generate({ model: 'gpt-image-2', prompt: 'two', n: 2, quality: 'low', size: '1536x864' });
  assert.equal(a.usage.output_tokens + b.usage.output_tokens, plain.usage.output_tokens + 4 * 100);
  assert.equal(a.usage.input_tokens, plain.usage.input_tokens);
  for (const e of events) {
    const img = decode(fromB64(e.b64_json));
    assert.deepEqual([img.width, img.height], [1536, 864]);
  }
});

test('transparent stream keeps alpha in partials and final', async () => {
  const events = await collect(await client.images.generate({
    model: 'gpt-image-1.5', prompt: 'sticker', background: 'transparent', stream: true, partial_images: 1, quality: 'low',
  }));
  for (const e of events) {
    assert.equal(e.background, 'transparent');
    assert.ok(alphaStats(decode(fromB64(e.b64_json))).transparent > 0);
  }
});

test('raw SSE framing', async () => {
  const res = await fetch(`${srv.url}/v1/images/generations`, {
    method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ model: 'gpt-image-1', prompt: 'framing', stream: true, partial_images: 2, quality: 'low' }),
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/event-stream');
  assert.equal(res.headers.get('cache-control'), 'no-cache');
  assert.equal(res.headers.get('x-accel-buffering'), 'no');
  assert.match(res.headers.get('x-request-id'), /^req_[0-9a-f]{32}$/);
  const text = await res.text();
  assert.ok(text.endsWith('\n\n'));
  const frames = text.slice(0, -2).split('\n\n');
  assert.equal(frames.length, 3);
  for (const f of frames) {
    const lines = f.split('\n');
    assert.equal(lines.length, 2, 'one event line and one data line');
    const type = lines[0].match(/^event: (\S+)$/)[1];
    assert.ok(lines[1].startsWith('data: {'));
    const data = JSON.parse(lines[1].slice(6));
    assert.equal(data.type, type);
    assert.deepEqual(Object.keys(data).slice(0, 7),
      ['type', 'b64_json', 'created_at', 'size', 'quality', 'background', 'output_format']);
  }
  assert.ok(!text.includes('[DONE]'));
});

test('errors found before the stream starts are plain JSON', async () => {
  const r = await postJSON(srv.url, '/v1/images/generations', { model: 'gpt-image-1', prompt: 'x', stream: true, partial_images: 9 });
  assert.equal(r.status, 400);
  assert.match(r.headers.get('content-type'), /^application\/json/);
  assert.equal(r.json.error.code, 'integer_above_max_value');
  await assert.rejects(client.images.generate({ model: 'dall-e-3', prompt: 'x', stream: true }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'stream');
});

test('an error after the stream started is an error event the SDK throws', async () => {
  const slow = await startServer({ args: ['--mock-delay-ms', '400', '--request-timeout', '1'] });
  try {
    const c = new OpenAI({ apiKey: 'sk-test', baseURL: `${slow.url}/v1`, maxRetries: 0 });
    const stream = await c.images.generate({ model: 'gpt-image-1', prompt: 'too slow', stream: true, partial_images: 3, quality: 'low' });
    const seen = [];
    await assert.rejects((async () => { for await (const e of stream) seen.push(e.type); })(), (e) => {
      assert.ok(e instanceof OpenAI.APIError, String(e));
      assert.match(e.message, /did not finish within 1 seconds/);
      return true;
    });
    assert.ok(seen.length >= 1 && seen.every((t) => t === 'image_generation.partial_image'), seen.join());
    // raw: the last frame is event: error with an error object
    const res = await fetch(`${slow.url}/v1/images/generations`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-image-1', prompt: 'too slow', stream: true, partial_images: 3, quality: 'low' }),
    });
    const frames = (await res.text()).trim().split('\n\n');
    const last = frames.at(-1).split('\n');
    assert.equal(last[0], 'event: error');
    const data = JSON.parse(last[1].slice(6));
    assert.equal(data.type, 'error');
    assert.equal(data.error.code, 'timeout');
    assert.equal(data.error.type, 'server_error');
    validate('Error', data.error);
  } finally {
    assert.equal((await slow.stop()).code, 0);
  }
});

test('keep-alive comments while nothing else is sent', async () => {
  const slow = await startServer({ args: ['--mock-delay-ms', '700', '--sse-keepalive', '1'] });
  try {
    const res = await fetch(`${slow.url}/v1/images/generations`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-image-1', prompt: 'slow', stream: true, partial_images: 1, quality: 'low' }),
    });
    const text = await res.text();
    assert.match(text, /(^|\n): keep-alive\n\n/);
    // the SDK ignores comment lines
    const c = new OpenAI({ apiKey: 'sk-test', baseURL: `${slow.url}/v1`, maxRetries: 0 });
    const events = await collect(await c.images.generate({ model: 'gpt-image-1', prompt: 'slow', stream: true, partial_images: 1, quality: 'low' }));
    assert.deepEqual(events.map((e) => e.type), ['image_generation.partial_image', 'image_generation.completed']);
  } finally {
    assert.equal((await slow.stop()).code, 0);
  }
});
