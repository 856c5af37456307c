// Every edit and variation error the contract lists (§3.2–3.5, §7.3), as raw multipart and
// JSON requests: status, type, code, param, message; plus malformed multipart bodies.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer, http, postJSON } from './support/server.mjs';
import { validate } from './support/schema.mjs';
import { rgba, png, jpegOf, maskWithHole, multipart } from './support/fixtures.mjs';

let srv;
before(async () => { srv = await startServer({ args: ['--max-upload', '60M'] }); });
after(async () => {
  const r = await srv.stop();
  assert.equal(r.code, 0, `server exit ${JSON.stringify(r)}\n${srv.stderr.slice(-3000)}`);
});

const PNG_RGBA = png(rgba(256, 256, 1));
const PNG_RGB = png(rgba(256, 256, 1), 2);
const img = (name = 'image[]', data = PNG_RGBA, type = 'image/png') => ({ name, filename: 'x.png', type, data });
const field = (name, value) => ({ name, value });

async function send(path, parts, extraHeaders = {}) {
  const { body, contentType } = multipart(parts);
  return http(srv.url + path, { headers: { 'content-type': contentType, ...extraHeaders }, body });
}

function expectError(r, status, type, code, param, message) {
  assert.equal(r.status, status, r.text);
  if (message instanceof RegExp) {
    assert.match(r.json.error.message, message);
    assert.deepEqual({ ...r.json.error, message: undefined }, { message: undefined, type, param, code });
  } else {
    assert.deepEqual(r.json, { error: { message, type, param, code } });
  }
  validate('ErrorResponse', r.json);
}

const GPT_MIMES = "Supported file formats are 'image/jpeg', 'image/png', and 'image/webp'.";

const cases = [
  ['unsupported mimetype (GPT)', [field('model', 'gpt-image-1'), field('prompt', 'x'), img('image', PNG_RGBA, 'application/octet-stream')],
    400, 'invalid_request_error', 'unsupported_file_mimetype', 'image',
    `Invalid file 'image': unsupported mimetype ('application/octet-stream'). ${GPT_MIMES}`],
  ['no part content type counts as octet-stream', [field('model', 'gpt-image-1'), field('prompt', 'x'), { name: 'image', filename: 'x.png', data: PNG_RGBA }],
    400, 'invalid_request_error', 'unsupported_file_mimetype', 'image',
    `Invalid file 'image': unsupported mimetype ('application/octet-stream'). ${GPT_MIMES}`],
  ['unsupported mimetype (dall-e-2)', [field('model', 'dall-e-2'), field('prompt', 'x'), img('image', jpegOf(rgba(64, 64)), 'image/jpeg')],
    400, 'invalid_request_error', 'unsupported_file_mimetype', 'image',
    "Invalid file 'image': unsupported mimetype ('image/jpeg'). Supported file formats are 'image/png'."],
  ['17 images', [field('model', 'gpt-image-1'), field('prompt', 'x'), ...Array.from({ length: 17 }, () => img())],
    400, 'invalid_request_error', 'array_above_max_length', 'image',
    "Invalid 'image': array too long. Expected an array with maximum length 16, but got an array with length 17 instead."],
  ['two images for dall-e-2', [field('model', 'dall-e-2'), field('prompt', 'x'), img(), img()],
    400, 'invalid_request_error', 'array_above_max_length', 'image',
    "Invalid 'image': array too long. Expected an array with maximum length 1, but got an array with length 2 instead."],
  ['no image', [field('model', 'gpt-image-1'), field('prompt', 'x')],
    400, 'invalid_request_error', 'missing_required_parameter', 'image', "Missing required parameter: 'image'."],
  ['text where a file is expected', [field('model', 'gpt-image-1'), field('prompt', 'x'), field('image[]', 'https://example.com/a.png')],
    400, 'invalid_request_error', 'invalid_type', 'image[0]', "Invalid type for 'image[0]': expected a file, but got a string instead."],
  ['mask size mismatch', [field('model', 'gpt-image-1'), field('prompt', 'x'), img(), img('mask', png(maskWithHole(128, 128, [0, 0, 64, 64])))],
    400, 'invalid_request_error', 'invalid_value', 'mask', 'Invalid mask image format - mask size does not match image size'],
  ['mask without alpha', [field('model', 'gpt-image-1'), field('prompt', 'x'), img(), img('mask', PNG_RGB)],
    400, 'invalid_request_error', 'invalid_value', 'mask', 'Invalid mask image format - mask image missing alpha channel'],
  ['mask not a png', [field('model', 'gpt-image-1'), field('prompt', 'x'), img(), img('mask', jpegOf(rgba(256, 256)), 'image/jpeg')],
    400, 'invalid_request_error', 'unsupported_file_mimetype', 'mask',
    "Invalid file 'mask': unsupported mimetype ('image/jpeg'). Supported file formats are 'image/png'."],
  ['RGB PNG for dall-e-2', [field('model', 'dall-e-2'), field('prompt', 'x'), img('image', PNG_RGB)],
    400, 'invalid_request_error', 'invalid_value', 'image', "Invalid input image - format must be in ['RGBA', 'LA', 'L'], got RGB."],
  ['non-square dall-e-2 image', [field('model', 'dall-e-2'), field('prompt', 'x'), img('image', png(rgba(256, 128)))],
    400, 'invalid_request_error', 'invalid_value', 'image', 'Invalid input image - image must be square, got 256x128.'],
  ['dall-e-2 image over 4 MB', [field('model', 'dall-e-2'), field('prompt', 'x'), img('image', Buffer.concat([PNG_RGBA, Buffer.alloc(4 * 1024 * 1024)]))],
    400, 'invalid_request_error', 'invalid_value', 'image', 'Uploaded image must be a PNG and less than 4 MB.'],
  ['undecodable image (1-based index)', [field('model', 'gpt-image-1'), field('prompt', 'x'), img(), img('image[]', Buffer.from('not an image at all'))],
    400, 'image_generation_user_error', 'invalid_image_file', null,
    /^Invalid image file or mode for image 2, please check your image file\. If you believe this is an error, contact us at help\.openai\.com and include the request ID req_[0-9a-f]{32}\.$/],
  ['images in multipart', [field('model', 'gpt-image-1'), field('prompt', 'x'), img('images')],
    400, 'invalid_request_error', 'unknown_parameter', 'images', "Unknown parameter: 'images'. For multipart/form-data use 'image' or 'image[]'."],
  ['style in multipart', [field('model', 'gpt-image-1'), field('prompt', 'x'), img(), field('style', 'vivid')],
    400, 'invalid_request_error', 'unknown_parameter', 'style', "Unknown parameter: 'style'."],
  ['moderation in multipart', [field('model', 'gpt-image-1'), field('prompt', 'x'), img(), field('moderation', 'low')],
    400, 'invalid_request_error', 'unknown_parameter', 'moderation', "Unknown parameter: 'moderation'."],
  ['n not an integer', [field('model', 'gpt-image-1'), field('prompt', 'x'), img(), field('n', 'two')],
    400, 'invalid_request_error', 'invalid_type', 'n',
    "Invalid type for 'n': expected an integer, but got a string value that could not be converted into an integer."],
  ['n out of range', [field('model', 'gpt-image-1'), field('prompt', 'x'), img(), field('n', '11')],
    400, 'invalid_request_error', 'integer_above_max_value', 'n',
    "Invalid 'n': integer above maximum value. Expected a value <= 10, but got 11 instead."],
  ['stream not a boolean', [field('model', 'gpt-image-1'), field('prompt', 'x'), img(), field('stream', 'yes')],
    400, 'invalid_request_error', 'invalid_type', 'stream',
    "Invalid type for 'stream': expected a boolean, but got a string value that could not be converted into a boolean."],
  ['missing prompt', [field('model', 'gpt-image-1'), img()],
    400, 'invalid_request_error', 'missing_required_parameter', 'prompt', "Missing required parameter: 'prompt'."],
  ['prompt too long for dall-e-2', [field('model', 'dall-e-2'), field('prompt', 'a'.repeat(1001)), img()],
    400, 'invalid_request_error', 'string_above_max_length', 'prompt',
    "Invalid 'prompt': string too long. Expected a string with maximum length 1000, but got a string with length 1001 instead."],
  ['response_format on a GPT model', [field('model', 'gpt-image-1'), field('prompt', 'x'), img(), field('response_format', 'url')],
    400, 'invalid_request_error', 'unknown_parameter', 'response_format', "Unknown parameter: 'response_format'."],
  ['input_fidelity on gpt-image-2', [field('model', 'gpt-image-2'), field('prompt', 'x'), img(), field('input_fidelity', 'high')],
    400, 'invalid_request_error', 'invalid_input_fidelity_model', 'input_fidelity', "input_fidelity is not supported for the model 'gpt-image-2'."],
  ['input_fidelity value', [field('model', 'gpt-image-1'), field('prompt', 'x'), img(), field('input_fidelity', 'medium')],
    400, 'invalid_request_error', 'invalid_value', 'input_fidelity', "Invalid value: 'medium'. Supported values are: 'high' and 'low'."],
  ['edits on dall-e-3', [field('model', 'dall-e-3'), field('prompt', 'x'), img()],
    400, 'invalid_request_error', 'invalid_value', 'model', "The model 'dall-e-3' does not support image edits."],
  ['unknown model', [field('model', 'nope'), field('prompt', 'x'), img()],
    400, 'image_generation_user_error', 'invalid_value', 'model', "The model 'nope' does not exist."],
  ['order: prompt before images', [field('model', 'gpt-image-1'), img('image', PNG_RGBA, 'text/plain')],
    400, 'invalid_request_error', 'missing_required_parameter', 'prompt', "Missing required parameter: 'prompt'."],
  ['order: images before n', [field('model', 'gpt-image-1'), field('prompt', 'x'), img('image', PNG_RGBA, 'text/plain'), field('n', '0')],
    400, 'invalid_request_error', 'unsupported_file_mimetype', 'image', `Invalid file 'image': unsupported mimetype ('text/plain'). ${GPT_MIMES}`],
];

for (const [name, parts, status, type, code, param, message] of cases) {
  test(`edit error: ${name}`, async () => {
    expectError(await send('/v1/images/edits', parts), status, type, code, param, message);
  });
}

test('variation errors', async () => {
  expectError(await send('/v1/images/variations', [field('model', 'gpt-image-1'), img('image')]),
    400, 'invalid_request_error', 'invalid_value', 'model', "Invalid value: 'gpt-image-1'. Supported values are: 'dall-e-2'.");
  expectError(await send('/v1/images/variations', [img('image', png(rgba(256, 128)))]),
    400, 'invalid_request_error', 'invalid_value', 'image', 'Invalid input image - image must be square, got 256x128.');
  expectError(await send('/v1/images/variations', [img('image', jpegOf(rgba(64, 64)), 'image/jpeg')]),
    400, 'invalid_request_error', 'unsupported_file_mimetype', 'image',
    "Invalid file 'image': unsupported mimetype ('image/jpeg'). Supported file formats are 'image/png'.");
  expectError(await send('/v1/images/variations', [img('image'), field('prompt', 'x')]),
    400, 'invalid_request_error', 'unknown_parameter', 'prompt', "Unknown parameter: 'prompt'.");
  expectError(await send('/v1/images/variations', [field('n', '1')]),
    400, 'invalid_request_error', 'missing_required_parameter', 'image', "Missing required parameter: 'image'.");
  // an RGB PNG is fine for variations
  const r = await send('/v1/images/variations', [img('image', PNG_RGB), field('size', '256x256'), field('response_format', 'b64_json')]);
  assert.equal(r.status, 200, r.text);
});

test('wrong content types', async () => {
  let r = await http(`${srv.url}/v1/images/edits`, { headers: { 'content-type': 'text/plain' }, body: 'x' });
  expectError(r, 400, 'invalid_request_error', 'unsupported_content_type', null,
    "Unsupported content type. This API method only accepts 'multipart/form-data' or 'application/json' requests, but you specified the header 'Content-Type: text/plain'. Please try again with a supported content type.");
  r = await postJSON(srv.url, '/v1/images/variations', { model: 'dall-e-2' });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.code, 'unsupported_content_type');
});

// Raw bodies that are not well-formed multipart.
function rawPost(path, headers, body) {
  const { hostname, port } = new URL(srv.url);
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(port), hostname, () => {
      s.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${headers}\r\n`);
      s.write(body); // no half-close: a client that closes its side counts as gone
    });
    let out = '';
    s.on('data', (d) => { out += d; });
    s.on('end', () => {
      const status = Number(out.split(' ')[1]);
      resolve({ status, json: JSON.parse(out.slice(out.indexOf('\r\n\r\n') + 4)) });
    });
    s.on('error', reject);
  });
}

test('malformed multipart: missing boundary, truncated body, boundary that never closes', async () => {
  const { body } = multipart([field('model', 'gpt-image-1'), field('prompt', 'x'), img()]);
  let r = await rawPost('/v1/images/edits', `Content-Type: multipart/form-data\r\nContent-Length: ${body.length}\r\n`, body);
  assert.equal(r.status, 400);
  assert.match(r.json.error.message, /boundary/);
  validate('ErrorResponse', r.json);
  const cut = body.subarray(0, body.length - 60);
  r = await rawPost('/v1/images/edits',
    `Content-Type: multipart/form-data; boundary=imagesd-test-boundary-7MA4YWxkTrZu0gW\r\nContent-Length: ${cut.length}\r\n`, cut);
  assert.equal(r.status, 400);
  assert.match(r.json.error.message, /ended before the closing boundary/);
  const open = Buffer.from('--B\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nno end in sight');
  r = await rawPost('/v1/images/edits', `Content-Type: multipart/form-data; boundary=B\r\nContent-Length: ${open.length}\r\n`, open);
  assert.equal(r.status, 400);
  assert.match(r.json.error.message, /closing boundary/);
  r = await rawPost('/v1/images/edits', 'Content-Type: multipart/form-data; boundary=B\r\nContent-Length: 11\r\n', 'hello world');
  assert.equal(r.status, 400);
});

test('uploads beyond --max-upload → 413; a GPT image of 50 MB or more → 400', async () => {
  const big = Buffer.concat([PNG_RGBA, Buffer.alloc(61 * 1024 * 1024)]);
  let r = await send('/v1/images/edits', [field('model', 'gpt-image-1'), field('prompt', 'x'), img('image', big)]);
  assert.equal(r.status, 413);
  assert.equal(r.json.error.code, 'request_too_large');
  const fifty = Buffer.concat([PNG_RGBA, Buffer.alloc(50 * 1024 * 1024)]);
  r = await send('/v1/images/edits', [field('model', 'gpt-image-1'), field('prompt', 'x'), img('image', fifty)]);
  expectError(r, 400, 'invalid_request_error', 'invalid_value', 'image', 'Uploaded image must be less than 50 MB.');
});

const dataUrl = (buf, type = 'image/png') => `data:${type};base64,${buf.toString('base64')}`;

const jsonCases = [
  ['image in JSON', { model: 'gpt-image-1', prompt: 'x', image: dataUrl(PNG_RGBA) }, 'invalid_request_error', 'invalid_value', 'image',
    "Unknown parameter: 'image'. For application/json on /v1/images/edits, use 'images' (array)."],
  ['image[] in JSON', { model: 'gpt-image-1', prompt: 'x', 'image[]': [] }, 'invalid_request_error', 'invalid_value', 'image[]',
    "Unknown parameter: 'image[]'. For application/json on /v1/images/edits, use 'images' (array)."],
  ['empty images', { model: 'gpt-image-1', prompt: 'x', images: [] }, 'invalid_request_error', 'empty_array', 'images',
    "Invalid 'images': empty array. Expected an array with minimum length 1, but got an empty array instead."],
  ['images an object', { model: 'gpt-image-1', prompt: 'x', images: { image_url: 'x' } }, 'invalid_request_error', 'invalid_type', 'images',
    "Invalid type for 'images': expected an array of objects, but got an object instead."],
  ['images of strings', { model: 'gpt-image-1', prompt: 'x', images: ['https://example.com/a.png'] }, 'invalid_request_error', 'invalid_type', 'images[0]',
    "Invalid type for 'images[0]': expected an object, but got a string instead."],
  ['file_id', { model: 'gpt-image-1', prompt: 'x', images: [{ file_id: 'file-abc' }] }, 'invalid_request_error', 'unsupported_value', 'images[0].file_id',
    /file IDs are not supported by this server/],
  ['both image_url and file_id', { model: 'gpt-image-1', prompt: 'x', images: [{ file_id: 'f', image_url: 'x' }] }, 'invalid_request_error', 'invalid_value', 'images[0]',
    "Invalid 'images[0]': expected exactly one of 'image_url' or 'file_id'."],
  ['unknown key in an image reference', { model: 'gpt-image-1', prompt: 'x', images: [{ image_url: dataUrl(PNG_RGBA), detail: 'high' }] },
    'invalid_request_error', 'unknown_parameter', 'images[0].detail', "Unknown parameter: 'images[0].detail'."],
  ['not a data or http URL', { model: 'gpt-image-1', prompt: 'x', images: [{ image_url: 'file:///etc/passwd' }] }, 'invalid_request_error', 'invalid_value', 'images[0].image_url',
    /expected a base64 data URL/],
  ['data URL of another type', { model: 'gpt-image-1', prompt: 'x', images: [{ image_url: dataUrl(PNG_RGBA, 'image/gif') }] }, 'invalid_request_error', 'unsupported_file_mimetype', 'images[0]',
    `Invalid file 'images[0]': unsupported mimetype ('image/gif'). ${GPT_MIMES}`],
  ['17 images', { model: 'gpt-image-1', prompt: 'x', images: Array.from({ length: 17 }, () => ({ image_url: dataUrl(PNG_RGBA) })) },
    'invalid_request_error', 'array_above_max_length', 'images',
    "Invalid 'images': array too long. Expected an array with maximum length 16, but got an array with length 17 instead."],
  ['JSON edits are GPT only', { model: 'dall-e-2', prompt: 'x', images: [{ image_url: dataUrl(PNG_RGBA) }] }, 'invalid_request_error', 'invalid_value', 'model',
    /multipart\/form-data only/],
  ['undecodable data', { model: 'gpt-image-1', prompt: 'x', images: [{ image_url: dataUrl(PNG_RGBA) }, { image_url: dataUrl(Buffer.from('junk')) }] },
    'image_generation_user_error', 'invalid_image_file', null, /image 2,/],
  ['missing images', { model: 'gpt-image-1', prompt: 'x' }, 'invalid_request_error', 'missing_required_parameter', 'images', "Missing required parameter: 'images'."],
];

for (const [name, body, type, code, param, message] of jsonCases) {
  test(`JSON edit error: ${name}`, async () => {
    expectError(await postJSON(srv.url, '/v1/images/edits', body), 400, type, code, param, message);
  });
}
