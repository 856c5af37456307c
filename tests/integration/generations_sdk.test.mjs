// The official openai SDK (the client our users have) calling images.generate against the
// real server: every profile, b64_json and url (then the link is fetched and decoded), all
// three output formats with compression, transparent backgrounds, n = 10, gpt-image-2 custom
// sizes, usage by the contract's tables, and every body against the OpenAPI schemas.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer } from './support/server.mjs';
import { validate } from './support/schema.mjs';
import { decode, fromB64, alphaStats } from './support/images.mjs';

let srv, client;
before(async () => {
  srv = await startServer();
  client = new OpenAI({ apiKey: 'sk-test-not-checked', baseURL: `${srv.url}/v1`, maxRetries: 0 });
});
after(async () => {
  const r = await srv.stop();
  assert.equal(r.code, 0, `server exit ${JSON.stringify(r)}\n${srv.stderr.slice(-3000)}`);
});

// The schema's size enum lists only the three classic sizes; gpt-image-2 answers with any size
// (the contract records "1254x1254" from the real API), so custom sizes are checked without it.
function validateImagesResponse(body) {
  const standard = ['1024x1024', '1024x1536', '1536x1024'];
  if (body.size && !standard.includes(body.size)) {
    const { size, ...rest } = body;
    assert.match(size, /^\d+x\d+$/);
    return validate('ImagesResponse', rest);
  }
  return validate('ImagesResponse', body);
}

const GPT = ['gpt-image-1', 'gpt-image-1-mini', 'gpt-image-1.5', 'chatgpt-image-latest', 'gpt-image-2',
  'gpt-image-2-2026-04-21'];
const AUTO_QUALITY = { 'gpt-image-1': 'medium', 'gpt-image-1-mini': 'high', 'gpt-image-1.5': 'medium',
  'chatgpt-image-latest': 'medium', 'gpt-image-2': 'medium', 'gpt-image-2-2026-04-21': 'medium' };
// §9.1 table / §9.2 formula at 1024x1024
const TOKENS_1024 = { low: [272, 196], medium: [1056, 1756], high: [4160, 7024] };

for (const model of GPT) {
  test(`${model}: defaults, resolved echo fields, usage, png`, async () => {
    const { data: res, response } = await client.images
      .generate({ model, prompt: 'A lighthouse at dusk, oil painting' })
      .withResponse();
    validateImagesResponse(res);
    assert.equal(res.background, 'opaque');
    assert.equal(res.output_format, 'png');
    assert.equal(res.quality, AUTO_QUALITY[model]);
    assert.equal(res.size, '1024x1024');
    assert.equal(res.data.length, 1);
    assert.equal(res.data[0].url, undefined);
    const img = decode(fromB64(res.data[0].b64_json));
    assert.deepEqual([img.format, img.width, img.height], ['png', 1024, 1024]);
    assert.equal(alphaStats(img).transparent, 0);
    const gen2 = model.startsWith('gpt-image-2');
    const per = TOKENS_1024[res.quality][gen2 ? 1 : 0];
    assert.equal(res.usage.output_tokens, per);
    assert.equal(res.usage.input_tokens, res.usage.input_tokens_details.text_tokens);
    assert.equal(res.usage.input_tokens_details.image_tokens, 0);
    assert.ok(res.usage.input_tokens > 0);
    assert.equal(res.usage.total_tokens, res.usage.input_tokens + res.usage.output_tokens);
    if (gen2) assert.deepEqual(res.usage.output_tokens_details, { image_tokens: per, text_tokens: 0 });
    else assert.equal(res.usage.output_tokens_details, undefined);
    assert.match(response.headers.get('x-request-id'), /^req_[0-9a-f]{32}$/);
    assert.match(response.headers.get('openai-processing-ms'), /^\d+$/);
    assert.equal(response.headers.get('openai-version'), '2020-10-01');
  });
}

test('gpt-image-1: every size and quality, usage table per image', async () => {
  const table = { low: [272, 408, 400], medium: [1056, 1584, 1568], high: [4160, 6240, 6208] };
  const sizes = ['1024x1024', '1024x1536', '1536x1024'];
  for (const quality of ['low', 'medium', 'high']) {
    for (let s = 0; s < 3; s++) {
      const res = await client.images.generate({ model: 'gpt-image-1', prompt: 'grid', quality, size: sizes[s], n: 2 });
      validateImagesResponse(res);
      assert.equal(res.quality, quality);
      assert.equal(res.size, sizes[s]);
      assert.equal(res.usage.output_tokens, 2 * table[quality][s], `${quality} ${sizes[s]}`);
      const [w, h] = sizes[s].split('x').map(Number);
      for (const d of res.data) {
        const img = decode(fromB64(d.b64_json));
        assert.deepEqual([img.width, img.height], [w, h]);
      }
    }
  }
});

test('output formats with compression: png, jpeg, webp', async () => {
  const sizes = {};
  for (const [output_format, output_compression] of [['png', 100], ['jpeg', 90], ['jpeg', 20], ['webp', 90], ['webp', 20]]) {
    const res = await client.images.generate({
      model: 'gpt-image-1', prompt: 'compression test pattern', output_format, output_compression, quality: 'low',
    });
    validateImagesResponse(res);
    assert.equal(res.output_format, output_format);
    const buf = fromB64(res.data[0].b64_json);
    const img = decode(buf);
    assert.equal(img.format, output_format);
    assert.deepEqual([img.width, img.height], [1024, 1024]);
    sizes[`${output_format}${output_compression}`] = buf.length;
  }
  assert.ok(sizes.jpeg20 < sizes.jpeg90, JSON.stringify(sizes));
  assert.ok(sizes.webp20 < sizes.webp90, JSON.stringify(sizes));
});

test('transparent backgrounds have real alpha (png and webp)', async () => {
  for (const output_format of ['png', 'webp']) {
    const res = await client.images.generate({
      model: 'gpt-image-1', prompt: 'a sticker of a cat', background: 'transparent', output_format, quality: 'low',
    });
    validateImagesResponse(res);
    assert.equal(res.background, 'transparent');
    const img = decode(fromB64(res.data[0].b64_json));
    assert.equal(img.format, output_format);
    assert.ok(img.hasAlphaChannel, `${output_format} has an alpha channel`);
    const a = alphaStats(img);
    assert.ok(a.transparent > 0.2 * img.width * img.height, `transparent pixels: ${JSON.stringify(a)}`);
    assert.ok(a.opaque > 0, `opaque (text) pixels: ${JSON.stringify(a)}`);
  }
});

test('n = 10 gives ten distinct images', async () => {
  const res = await client.images.generate({ model: 'gpt-image-1-mini', prompt: 'ten of them', n: 10, quality: 'low' });
  validateImagesResponse(res);
  assert.equal(res.data.length, 10);
  assert.equal(new Set(res.data.map((d) => d.b64_json)).size, 10);
  for (const d of res.data) assert.equal(decode(fromB64(d.b64_json)).width, 1024);
  assert.equal(res.usage.output_tokens, 10 * 272);
});

test('the same request gives the same image (deterministic mock)', async () => {
  const req = { model: 'gpt-image-1', prompt: 'determinism', quality: 'low' };
  const a = await client.images.generate(req);
  const b = await client.images.generate(req);
  assert.equal(a.data[0].b64_json, b.data[0].b64_json);
  const c = await client.images.generate({ ...req, prompt: 'determinism!' });
  assert.notEqual(a.data[0].b64_json, c.data[0].b64_json);
});

test('gpt-image-2 custom sizes and the usage formula', async () => {
  // §9.2 table values
  const cases = [['1536x864', 'low'], ['2048x1152', 'medium'], ['3840x2160', 'high'], ['2160x3840', 'low'],
    ['1024x3072', 'medium'], ['2048x2048', 'low']];
  const expected = { '2048x1152medium': 1413, '3840x2160high': 13342, '2160x3840low': 371, '2048x2048low': 397 };
  for (const [size, quality] of cases) {
    const res = await client.images.generate({ model: 'gpt-image-2', prompt: `size ${size}`, size, quality });
    validateImagesResponse(res);
    assert.equal(res.size, size);
    const [w, h] = size.split('x').map(Number);
    const img = decode(fromB64(res.data[0].b64_json));
    assert.deepEqual([img.width, img.height], [w, h]);
    if (expected[size + quality]) assert.equal(res.usage.output_tokens, expected[size + quality], size);
    assert.equal(res.usage.output_tokens_details.image_tokens, res.usage.output_tokens);
  }
});

test('dall-e-2: url by default, the link serves the image without auth', async () => {
  for (const size of ['256x256', '512x512', '1024x1024']) {
    const res = await client.images.generate({ model: 'dall-e-2', prompt: 'a watercolor fox', size });
    validateImagesResponse(res);
    assert.deepEqual(Object.keys(res).sort(), ['created', 'data']);
    assert.equal(res.data[0].b64_json, undefined);
    const link = new URL(res.data[0].url);
    assert.equal(link.origin, srv.url);
    const got = await fetch(res.data[0].url); // no Authorization header
    assert.equal(got.status, 200);
    assert.equal(got.headers.get('content-type'), 'image/png');
    const img = decode(Buffer.from(await got.arrayBuffer()));
    const [w, h] = size.split('x').map(Number);
    assert.deepEqual([img.format, img.width, img.height], ['png', w, h]);
  }
});

test('dall-e-2 and dall-e-3: b64_json', async () => {
  const r2 = await client.images.generate({ model: 'dall-e-2', prompt: 'x', response_format: 'b64_json', size: '256x256', n: 3 });
  validateImagesResponse(r2);
  assert.equal(r2.data.length, 3);
  assert.equal(decode(fromB64(r2.data[2].b64_json)).width, 256);
  const r3 = await client.images.generate({ model: 'dall-e-3', prompt: 'a  tall\n tower', response_format: 'b64_json', size: '1024x1792', quality: 'hd', style: 'natural' });
  validateImagesResponse(r3);
  assert.equal(r3.data[0].revised_prompt, 'a tall tower');
  const img = decode(fromB64(r3.data[0].b64_json));
  assert.deepEqual([img.width, img.height], [1024, 1792]);
  assert.equal(r3.usage, undefined);
});

test('dall-e-3: url and revised_prompt', async () => {
  const res = await client.images.generate({ model: 'dall-e-3', prompt: 'a cozy cabin', size: '1792x1024' });
  validateImagesResponse(res);
  assert.equal(res.data[0].revised_prompt, 'a cozy cabin');
  const got = await fetch(res.data[0].url);
  const img = decode(Buffer.from(await got.arrayBuffer()));
  assert.deepEqual([img.width, img.height], [1792, 1024]);
});

test('no model: dall-e-2, or gpt-image-1 when a GPT-only parameter is present', async () => {
  const a = await client.images.generate({ prompt: 'default model', size: '256x256' });
  assert.ok(a.data[0].url, 'dall-e-2 answers with a url');
  assert.equal(a.usage, undefined);
  const b = await client.images.generate({ prompt: 'default gpt model', output_format: 'webp', quality: 'low' });
  assert.equal(b.output_format, 'webp');
  assert.equal(b.usage.output_tokens, 272);
  assert.equal(decode(fromB64(b.data[0].b64_json)).format, 'webp');
});

test('SDK error classes carry type, code, param and request id', async () => {
  await assert.rejects(
    client.images.generate({ model: 'gpt-image-1', prompt: 'x', size: '999x999' }),
    (e) => {
      assert.ok(e instanceof OpenAI.BadRequestError);
      assert.equal(e.status, 400);
      assert.equal(e.code, 'invalid_value');
      assert.equal(e.param, 'size');
      assert.equal(e.type, 'invalid_request_error');
      assert.match(e.requestID, /^req_[0-9a-f]{32}$/);
      return true;
    });
  await assert.rejects(client.images.generate({ model: 'nope', prompt: 'x' }),
    (e) => e instanceof OpenAI.BadRequestError && e.message.includes("The model 'nope' does not exist."));
});

test('models endpoints list the catalogue', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  for (const id of ['dall-e-2', 'dall-e-3', ...GPT]) assert.ok(ids.includes(id), id);
  const m = await client.models.retrieve('gpt-image-1');
  assert.deepEqual({ id: m.id, object: m.object, owned_by: m.owned_by }, { id: 'gpt-image-1', object: 'model', owned_by: 'system' });
  await assert.rejects(client.models.retrieve('nope'), (e) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found');
});
