// Edits and variations through the official SDK (multipart, as images.edit sends it), and the
// JSON edit form over raw HTTP: outputs decoded and checked, masked pixels kept exactly, the
// composition of many inputs, size auto from the first image, input-image usage, streaming.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import OpenAI, { toFile } from 'openai';
import { startServer, postJSON } from './support/server.mjs';
import { validate } from './support/schema.mjs';
import { decode, fromB64, alphaStats } from './support/images.mjs';
import { rgba, png, jpegOf, webpOf, maskWithHole } from './support/fixtures.mjs';

let srv, client;
before(async () => {
  srv = await startServer();
  client = new OpenAI({ apiKey: 'sk-test', baseURL: `${srv.url}/v1`, maxRetries: 0 });
});
after(async () => {
  const r = await srv.stop();
  assert.equal(r.code, 0, `server exit ${JSON.stringify(r)}\n${srv.stderr.slice(-3000)}`);
});

const file = (buf, name, type) => toFile(buf, name, { type });

test('one image: output decoded, usage counts the input image (1024x1024 → 194)', async () => {
  const input = png(rgba(1024, 1024, 3));
  const res = await client.images.edit({
    model: 'gpt-image-1', prompt: 'add a hat', image: await file(input, 'in.png', 'image/png'), quality: 'low',
  });
  validate('ImagesResponse', res);
  const img = decode(fromB64(res.data[0].b64_json));
  assert.deepEqual([img.format, img.width, img.height], ['png', 1024, 1024]);
  assert.equal(res.usage.input_tokens_details.image_tokens, 194);
  assert.equal(res.usage.output_tokens, 272);
  assert.equal(res.usage.input_tokens, res.usage.input_tokens_details.image_tokens + res.usage.input_tokens_details.text_tokens);
});

test('sixteen images are all used by the composition', async () => {
  const images = [];
  for (let i = 0; i < 16; i++) images.push(await file(png(rgba(256, 256, i + 10)), `in${i}.png`, 'image/png'));
  const res = await client.images.edit({ model: 'gpt-image-1.5', prompt: 'a collage', image: images, quality: 'low', size: '1024x1024' });
  validate('ImagesResponse', res);
  assert.equal(res.usage.input_tokens_details.image_tokens, 16 * 194);
  const a = res.data[0].b64_json;
  // changing the last image changes the result
  images[15] = await file(png(rgba(256, 256, 99)), 'in15.png', 'image/png');
  const res2 = await client.images.edit({ model: 'gpt-image-1.5', prompt: 'a collage', image: images, quality: 'low', size: '1024x1024' });
  assert.notEqual(res2.data[0].b64_json, a);
});

test('mask: pixels under the opaque mask are kept exactly, the hole is repainted', async () => {
  const input = rgba(512, 512, 5);
  const hole = [128, 128, 384, 384];
  const res = await client.images.edit({
    model: 'gpt-image-1', prompt: 'a window', size: 'auto', quality: 'low',
    image: await file(png(input), 'in.png', 'image/png'),
    mask: await file(png(maskWithHole(512, 512, hole)), 'mask.png', 'image/png'),
  });
  // size auto from a square input → 1024x1024, so the image is resized: check a same-size edit
  assert.equal(res.size, '1024x1024');
  const big = rgba(1024, 1024, 6);
  const bigHole = [256, 256, 768, 768];
  const res2 = await client.images.edit({
    model: 'gpt-image-1', prompt: 'a window', size: '1024x1024', quality: 'low',
    image: await file(png(big), 'in.png', 'image/png'),
    mask: await file(png(maskWithHole(1024, 1024, bigHole)), 'mask.png', 'image/png'),
  });
  const out = decode(fromB64(res2.data[0].b64_json));
  let kept = 0, changedInHole = 0, inHole = 0;
  for (let y = 0; y < 1024; y++) {
    for (let x = 0; x < 1024; x++) {
      const i = (y * 1024 + x) * 4;
      const inside = x >= bigHole[0] && x < bigHole[2] && y >= bigHole[1] && y < bigHole[3];
      const same = out.data[i] === big.data[i] && out.data[i + 1] === big.data[i + 1] && out.data[i + 2] === big.data[i + 2];
      if (!inside) { assert.ok(same, `pixel ${x},${y} kept`); kept++; } else { inHole++; if (!same) changedInHole++; }
    }
  }
  assert.equal(kept, 1024 * 1024 - 512 * 512);
  assert.ok(changedInHole > 0.5 * inHole, `repainted ${changedInHole} of ${inHole}`);
});

test('every output format, and jpeg/webp inputs', async () => {
  const inputs = [
    await file(png(rgba(512, 512, 7)), 'a.png', 'image/png'),
    await file(jpegOf(rgba(512, 512, 8)), 'b.jpg', 'image/jpeg'),
    await file(webpOf(rgba(512, 512, 9)), 'c.webp', 'image/webp'),
  ];
  for (const output_format of ['png', 'jpeg', 'webp']) {
    const res = await client.images.edit({
      model: 'gpt-image-1-mini', prompt: 'formats', image: inputs, output_format, quality: 'low',
      ...(output_format === 'png' ? {} : { output_compression: 70 }),
    });
    validate('ImagesResponse', res);
    assert.equal(res.output_format, output_format);
    assert.equal(decode(fromB64(res.data[0].b64_json)).format, output_format);
  }
});

test('input_fidelity: high adds the surcharge; refused on gpt-image-1-mini', async () => {
  const image = await file(png(rgba(1024, 1024, 2)), 'in.png', 'image/png');
  const res = await client.images.edit({ model: 'gpt-image-1', prompt: 'x', image, input_fidelity: 'high', quality: 'low' });
  assert.equal(res.usage.input_tokens_details.image_tokens, 194 + 4160);
  await assert.rejects(
    client.images.edit({ model: 'gpt-image-1-mini', prompt: 'x', image, input_fidelity: 'high' }),
    (e) => e instanceof OpenAI.BadRequestError && e.code === 'invalid_input_fidelity_model' && e.param === 'input_fidelity');
});

test('size auto follows the first image\'s aspect ratio', async () => {
  const wide = await file(png(rgba(900, 600, 4)), 'wide.png', 'image/png');
  const res = await client.images.edit({ model: 'gpt-image-1', prompt: 'x', image: wide, quality: 'low' });
  assert.equal(res.size, '1536x1024');
  const img = decode(fromB64(res.data[0].b64_json));
  assert.deepEqual([img.width, img.height], [1536, 1024]);
  const tall = await file(png(rgba(600, 900, 4)), 'tall.png', 'image/png');
  const r2 = await client.images.edit({ model: 'gpt-image-2', prompt: 'x', image: tall, quality: 'low' });
  const [w, h] = r2.size.split('x').map(Number);
  assert.ok(h > w && w % 16 === 0 && h % 16 === 0, r2.size);
  assert.ok(Math.abs(w / h - 600 / 900) < 0.05, r2.size);
});

test('transparent edit keeps alpha', async () => {
  const res = await client.images.edit({
    model: 'gpt-image-1', prompt: 'sticker', background: 'transparent', quality: 'low', size: '1024x1024',
    image: await file(png(rgba(1024, 1024, 1, (x) => (x < 512 ? 0 : 255))), 'in.png', 'image/png'),
  });
  assert.equal(res.background, 'transparent');
  const img = decode(fromB64(res.data[0].b64_json));
  assert.ok(img.hasAlphaChannel && alphaStats(img).transparent > 0);
});

test('dall-e-2 edit (RGBA square PNG) answers with a url', async () => {
  const res = await client.images.edit({
    model: 'dall-e-2', prompt: 'a cat', size: '256x256',
    image: await file(png(rgba(512, 512, 3, 255)), 'in.png', 'image/png'),
    mask: await file(png(maskWithHole(512, 512, [0, 0, 256, 256])), 'mask.png', 'image/png'),
  });
  validate('ImagesResponse', res);
  const got = await fetch(res.data[0].url);
  const img = decode(Buffer.from(await got.arrayBuffer()));
  assert.deepEqual([img.width, img.height], [256, 256]);
  assert.equal(res.usage, undefined);
});

test('variations: n distinct deterministic variants, url or b64_json', async () => {
  const image = await file(png(rgba(512, 512, 12)), 'in.png', 'image/png');
  const res = await client.images.createVariation({ image, n: 3, size: '512x512', response_format: 'b64_json' });
  validate('ImagesResponse', res);
  assert.equal(res.data.length, 3);
  assert.equal(new Set(res.data.map((d) => d.b64_json)).size, 3);
  for (const d of res.data) assert.equal(decode(fromB64(d.b64_json)).width, 512);
  const again = await client.images.createVariation({ image, n: 3, size: '512x512', response_format: 'b64_json' });
  assert.deepEqual(again.data.map((d) => d.b64_json), res.data.map((d) => d.b64_json));
  const byUrl = await client.images.createVariation({ image, model: 'dall-e-2' });
  const got = await fetch(byUrl.data[0].url);
  assert.equal(decode(Buffer.from(await got.arrayBuffer())).width, 1024);
});

test('streaming edits: image_edit events', async () => {
  const stream = await client.images.edit({
    model: 'gpt-image-1', prompt: 'stream me', stream: true, partial_images: 2, quality: 'low',
    image: await file(png(rgba(1024, 1024, 3)), 'in.png', 'image/png'),
  });
  const events = [];
  for await (const e of stream) events.push(e);
  assert.deepEqual(events.map((e) => e.type), ['image_edit.partial_image', 'image_edit.partial_image', 'image_edit.completed']);
  validate('ImageEditPartialImageEvent', events[0]);
  validate('ImageEditCompletedEvent', events[2]);
  assert.equal(events[2].usage.input_tokens_details.image_tokens, 194);
  assert.equal(events[2].usage.output_tokens, 272 + 200);
});

test('JSON edits with data: URLs (images and mask)', async () => {
  const img = png(rgba(1024, 1024, 21));
  const mask = png(maskWithHole(1024, 1024, [0, 0, 512, 512]));
  const r = await postJSON(srv.url, '/v1/images/edits', {
    model: 'gpt-image-1.5', prompt: 'json edit', quality: 'low', size: '1024x1024', moderation: 'low',
    images: [{ image_url: `data:image/png;base64,${img.toString('base64')}` }],
    mask: { image_url: `data:image/png;base64,${mask.toString('base64')}` },
  });
  assert.equal(r.status, 200, r.text);
  validate('ImagesResponse', r.json);
  const out = decode(fromB64(r.json.data[0].b64_json));
  const src = rgba(1024, 1024, 21);
  const i = (800 * 1024 + 800) * 4; // outside the hole: kept
  assert.deepEqual([...out.data.subarray(i, i + 3)], [...src.data.subarray(i, i + 3)]);
  assert.equal(r.json.usage.input_tokens_details.image_tokens, 194);
});

// A local image server for the remote-URL tests.
function imageServer(body) {
  return new Promise((resolve) => {
    const s = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': body.length });
      res.end(body);
    });
    s.listen(0, '127.0.0.1', () => resolve(s));
  });
}

test('JSON edits with remote URLs: off by default, SSRF guard on loopback, allowed when configured', async () => {
  const body = png(rgba(512, 512, 30));
  const imgSrv = await imageServer(body);
  const url = `http://127.0.0.1:${imgSrv.address().port}/in.png`;
  const req = { model: 'gpt-image-1', prompt: 'remote', quality: 'low', images: [{ image_url: url }] };
  try {
    let r = await postJSON(srv.url, '/v1/images/edits', req);
    assert.equal(r.status, 400);
    assert.equal(r.json.error.param, 'images[0].image_url');
    assert.match(r.json.error.message, /does not fetch remote images/);
    const guarded = await startServer({ args: ['--remote-images', 'true'] });
    try {
      r = await postJSON(guarded.url, '/v1/images/edits', req);
      assert.equal(r.status, 400);
      assert.match(r.json.error.message, /images\[0\]\.image_url/);
      assert.match(r.json.error.message, /refused|not allowed|private|loopback/i, r.json.error.message);
    } finally {
      assert.equal((await guarded.stop()).code, 0);
    }
    const open = await startServer({ args: ['--remote-images', 'true', '--remote-images-private', 'true'] });
    try {
      r = await postJSON(open.url, '/v1/images/edits', req);
      assert.equal(r.status, 200, r.text);
      assert.equal(decode(fromB64(r.json.data[0].b64_json)).width, 1024);
    } finally {
      assert.equal((await open.stop()).code, 0);
    }
  } finally {
    imgSrv.close();
  }
});
