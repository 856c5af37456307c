// Every /v1/images/generations error the contract lists (§3.1, §4, §7.3), over raw HTTP:
// status, type, code, param and the exact message, plus the recorded validation order.
// Each body is also checked against the official ErrorResponse schema.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, postJSON, http } from './support/server.mjs';
import { validate } from './support/schema.mjs';

let srv;
before(async () => { srv = await startServer(); });
after(async () => {
  const r = await srv.stop();
  assert.equal(r.code, 0, `server exit ${JSON.stringify(r)}\n${srv.stderr.slice(-3000)}`);
});

const GPT_QUALITY = "Supported values are: 'low', 'medium', 'high', and 'auto'.";
const long = (n) => 'a'.repeat(n);

// [name, body, status, type, code, param, message]
const cases = [
  ['unknown parameter', { prompt: 'x', model: 'gpt-image-1', bogus_field: 1 }, 400,
    'invalid_request_error', 'unknown_parameter', 'bogus_field', "Unknown parameter: 'bogus_field'."],
  ['mask on generations, even null', { prompt: 'x', model: 'gpt-image-1', mask: null }, 400,
    'invalid_request_error', 'unknown_parameter', 'mask', "Unknown parameter: 'mask'."],
  ['images on generations', { prompt: 'x', model: 'gpt-image-1', images: [] }, 400,
    'invalid_request_error', 'unknown_parameter', 'images', "Unknown parameter: 'images'."],
  ['input_fidelity on generations', { prompt: 'x', model: 'gpt-image-1', input_fidelity: 'high' }, 400,
    'invalid_request_error', 'unknown_parameter', 'input_fidelity', "Unknown parameter: 'input_fidelity'."],
  ['response_format on a GPT model', { prompt: 'x', model: 'gpt-image-1', response_format: 'b64_json' }, 400,
    'invalid_request_error', 'unknown_parameter', 'response_format', "Unknown parameter: 'response_format'."],
  ['response_format null on a GPT model', { prompt: 'x', model: 'gpt-image-2', response_format: null }, 400,
    'invalid_request_error', 'unknown_parameter', 'response_format', "Unknown parameter: 'response_format'."],
  ['style on a GPT model', { prompt: 'x', model: 'gpt-image-1.5', style: 'vivid' }, 400,
    'invalid_request_error', 'unknown_parameter', 'style', "Unknown parameter: 'style'."],
  ['style on dall-e-2', { prompt: 'x', model: 'dall-e-2', style: 'vivid' }, 400,
    'invalid_request_error', 'unknown_parameter', 'style', "Unknown parameter: 'style'."],
  ['output_format on dall-e-3', { prompt: 'x', model: 'dall-e-3', output_format: 'png' }, 400,
    'invalid_request_error', 'unknown_parameter', 'output_format', "Unknown parameter: 'output_format'."],
  ['missing prompt', { model: 'gpt-image-1' }, 400,
    'invalid_request_error', 'missing_required_parameter', 'prompt', "Missing required parameter: 'prompt'."],
  ['empty prompt', { prompt: '', model: 'gpt-image-1' }, 400, 'invalid_request_error', 'empty_string', 'prompt',
    "Invalid 'prompt': empty string. Expected a string with minimum length 1, but got an empty string instead."],
  ['null prompt', { prompt: null, model: 'gpt-image-1' }, 400, 'invalid_request_error', 'invalid_type', 'prompt',
    "Invalid type for 'prompt': expected a string, but got null instead."],
  ['integer prompt', { prompt: 5, model: 'gpt-image-1' }, 400, 'invalid_request_error', 'invalid_type', 'prompt',
    "Invalid type for 'prompt': expected a string, but got an integer instead."],
  ['prompt too long (GPT)', { prompt: long(50733), model: 'gpt-image-1' }, 400, 'invalid_request_error',
    'string_above_max_length', 'prompt',
    "Invalid 'prompt': string too long. Expected a string with maximum length 32000, but got a string with length 50733 instead."],
  ['prompt too long counts characters, not bytes', { prompt: 'é'.repeat(1001), model: 'dall-e-2' }, 400,
    'invalid_request_error', 'string_above_max_length', 'prompt',
    "Invalid 'prompt': string too long. Expected a string with maximum length 1000, but got a string with length 1001 instead."],
  ['prompt too long (dall-e-3)', { prompt: long(4001), model: 'dall-e-3' }, 400, 'invalid_request_error',
    'string_above_max_length', 'prompt',
    "Invalid 'prompt': string too long. Expected a string with maximum length 4000, but got a string with length 4001 instead."],
  ['n below 1', { prompt: 'x', model: 'gpt-image-1', n: 0 }, 400, 'invalid_request_error', 'integer_below_min_value', 'n',
    "Invalid 'n': integer below minimum value. Expected a value >= 1, but got 0 instead."],
  ['n above 10', { prompt: 'x', model: 'gpt-image-1', n: 11 }, 400, 'invalid_request_error', 'integer_above_max_value', 'n',
    "Invalid 'n': integer above maximum value. Expected a value <= 10, but got 11 instead."],
  ['n decimal', { prompt: 'x', model: 'gpt-image-1', n: 1.5 }, 400, 'invalid_request_error', 'invalid_type', 'n',
    "Invalid type for 'n': expected an integer, but got a decimal number instead."],
  ['n string', { prompt: 'x', model: 'gpt-image-1', n: '2' }, 400, 'invalid_request_error', 'invalid_type', 'n',
    "Invalid type for 'n': expected an integer, but got a string instead."],
  ['n boolean', { prompt: 'x', model: 'gpt-image-1', n: true }, 400, 'invalid_request_error', 'invalid_type', 'n',
    "Invalid type for 'n': expected an integer, but got a boolean instead."],
  ['n absurd', '{"prompt":"x","model":"gpt-image-1","n":123456789012345678901234567890}', 400,
    'invalid_request_error', 'integer_above_max_value', 'n',
    "Invalid 'n': integer above maximum value. Expected a value <= 10, but got 123456789012345677877719597056 instead."],
  ['n=2 on dall-e-3', { prompt: 'x', model: 'dall-e-3', n: 2 }, 400, 'invalid_request_error', null, null,
    'You must provide n=1 for this model.'],
  ['output_compression above 100', { prompt: 'x', model: 'gpt-image-1', output_format: 'jpeg', output_compression: 101 }, 400,
    'invalid_request_error', 'integer_above_max_value', 'output_compression',
    "Invalid 'output_compression': integer above maximum value. Expected a value <= 100, but got 101 instead."],
  ['output_compression below 0', { prompt: 'x', model: 'gpt-image-1', output_format: 'webp', output_compression: -1 }, 400,
    'invalid_request_error', 'integer_below_min_value', 'output_compression',
    "Invalid 'output_compression': integer below minimum value. Expected a value >= 0, but got -1 instead."],
  ['partial_images above 3', { prompt: 'x', model: 'gpt-image-1', partial_images: 4 }, 400,
    'invalid_request_error', 'integer_above_max_value', 'partial_images',
    "Invalid 'partial_images': integer above maximum value. Expected a value <= 3, but got 4 instead."],
  ['quality unknown', { prompt: 'x', model: 'gpt-image-1', quality: 'ultra' }, 400, 'invalid_request_error',
    'invalid_value', 'quality', `Invalid value: 'ultra'. ${GPT_QUALITY}`],
  ['quality standard on gpt-image-2', { prompt: 'x', model: 'gpt-image-2', quality: 'standard' }, 400,
    'invalid_request_error', 'invalid_value', 'quality', `Invalid value: 'standard'. ${GPT_QUALITY}`],
  ['quality hd on gpt-image-2', { prompt: 'x', model: 'gpt-image-2', quality: 'hd' }, 400,
    'invalid_request_error', 'invalid_value', 'quality', `Invalid value: 'hd'. ${GPT_QUALITY}`],
  ['quality empty on gpt-image-2', { prompt: 'x', model: 'gpt-image-2', quality: '' }, 400,
    'invalid_request_error', 'invalid_value', 'quality', `Invalid value: ''. ${GPT_QUALITY}`],
  ['quality integer', { prompt: 'x', model: 'gpt-image-1', quality: 1 }, 400, 'invalid_request_error',
    'invalid_type', 'quality',
    "Invalid type for 'quality': expected one of 'low', 'medium', 'high', or 'auto', but got an integer instead."],
  ['output_format unknown', { prompt: 'x', model: 'gpt-image-1', output_format: 'gif' }, 400,
    'invalid_request_error', 'invalid_value', 'output_format',
    "Invalid value: 'gif'. Supported values are: 'png', 'webp', and 'jpeg'."],
  ['moderation unknown', { prompt: 'x', model: 'gpt-image-1', moderation: 'bogus' }, 400,
    'invalid_request_error', 'invalid_value', 'moderation', "Invalid value: 'bogus'. Supported values are: 'auto' and 'low'."],
  ['background unknown', { prompt: 'x', model: 'gpt-image-1', background: 'bogus' }, 400,
    'invalid_request_error', 'invalid_value', 'background',
    "Invalid value: 'bogus'. Supported values are: 'transparent', 'opaque', and 'auto'."],
  ['gpt-image-2 size not WxH', { prompt: 'x', model: 'gpt-image-2', size: 'bogus' }, 400,
    'image_generation_user_error', 'invalid_value', 'size', "Invalid size 'bogus'. Expected WIDTHxHEIGHT, for example '1824x1024'."],
  ['gpt-image-2 size 0x0', { prompt: 'x', model: 'gpt-image-2', size: '0x0' }, 400,
    'image_generation_user_error', 'invalid_value', 'size', "Invalid size '0x0'. Expected WIDTHxHEIGHT, for example '1824x1024'."],
  ['gpt-image-2 size not /16', { prompt: 'x', model: 'gpt-image-2', size: '9x9' }, 400,
    'image_generation_user_error', 'invalid_value', 'size', "Invalid size '9x9'. Width and height must both be divisible by 16."],
  ['gpt-image-2 edge over 3840', { prompt: 'x', model: 'gpt-image-2', size: '4096x1536' }, 400,
    'image_generation_user_error', 'invalid_value', 'size', "Invalid size '4096x1536'. The longest edge must be at most 3840 pixels."],
  ['gpt-image-2 ratio over 3:1', { prompt: 'x', model: 'gpt-image-2', size: '3840x1024' }, 400,
    'image_generation_user_error', 'invalid_value', 'size', "Invalid size '3840x1024'. The aspect ratio must be between 1:3 and 3:1."],
  ['gpt-image-2 too few pixels', { prompt: 'x', model: 'gpt-image-2', size: '512x512' }, 400,
    'image_generation_user_error', 'invalid_value', 'size',
    "Invalid size '512x512'. The total number of pixels must be between 655360 and 8294400."],
  ['gpt-image-2 too many pixels', { prompt: 'x', model: 'gpt-image-2', size: '3840x2176' }, 400,
    'image_generation_user_error', 'invalid_value', 'size',
    "Invalid size '3840x2176'. The total number of pixels must be between 655360 and 8294400."],
  ['size integer', { prompt: 'x', model: 'gpt-image-2', size: 1024 }, 400, 'invalid_request_error', 'invalid_type', 'size',
    "Invalid type for 'size': expected a string, but got an integer instead."],
  ['size not listed (gpt-image-1)', { prompt: 'x', model: 'gpt-image-1', size: '2048x2048' }, 400,
    'invalid_request_error', 'invalid_value', 'size',
    "Invalid value: '2048x2048'. Supported values are: '1024x1024', '1536x1024', '1024x1536', and 'auto'."],
  ['size not listed (dall-e-2)', { prompt: 'x', model: 'dall-e-2', size: '1536x1024' }, 400,
    'invalid_request_error', 'invalid_value', 'size',
    "Invalid value: '1536x1024'. Supported values are: '256x256', '512x512', and '1024x1024'."],
  ['no model falls back to dall-e-2 rules', { prompt: 'x', size: '1536x1024' }, 400,
    'invalid_request_error', 'invalid_value', 'size',
    "Invalid value: '1536x1024'. Supported values are: '256x256', '512x512', and '1024x1024'."],
  ['size not supported (dall-e-3)', { prompt: 'x', model: 'dall-e-3', size: '256x256' }, 400,
    'invalid_request_error', 'invalid_size', null, 'The size is not supported by this model.'],
  ['png with compression below 100', { prompt: 'x', model: 'gpt-image-1', output_format: 'png', output_compression: 50 }, 400,
    'image_generation_user_error', 'invalid_png_output_compression', null,
    'Compression less than 100 is not supported for PNG output format'],
  ['default png with compression below 100', { prompt: 'x', model: 'gpt-image-1', output_compression: 99 }, 400,
    'image_generation_user_error', 'invalid_png_output_compression', null,
    'Compression less than 100 is not supported for PNG output format'],
  ['transparent on gpt-image-2', { prompt: 'x', model: 'gpt-image-2', background: 'transparent' }, 400,
    'image_generation_user_error', 'invalid_value', 'background', 'Transparent background is not supported for this model.'],
  ['transparent with jpeg', { prompt: 'x', model: 'gpt-image-1', background: 'transparent', output_format: 'jpeg' }, 400,
    'invalid_request_error', 'invalid_value', 'background',
    "Transparent background requires output_format to be png or webp, but got 'jpeg'."],
  ['unknown model', { prompt: 'x', model: 'bad model' }, 400, 'image_generation_user_error', 'invalid_value', 'model',
    "The model 'bad model' does not exist."],
  ['model integer', { prompt: 'x', model: 3 }, 400, 'invalid_request_error', 'invalid_type', 'model',
    "Invalid type for 'model': expected a string, but got an integer instead."],
  ['model array', { prompt: 'x', model: ['gpt-image-1'] }, 400, 'invalid_request_error', 'invalid_type', 'model',
    "Invalid type for 'model': expected a string, but got an array instead."],
  ['stream not a boolean', { prompt: 'x', model: 'gpt-image-1', stream: 'true' }, 400, 'invalid_request_error',
    'invalid_type', 'stream', "Invalid type for 'stream': expected a boolean, but got a string instead."],
  ['stream on dall-e-2', { prompt: 'x', model: 'dall-e-2', stream: true }, 400, 'invalid_request_error',
    'invalid_value', 'stream',
    "Streaming is not supported for the model 'dall-e-2'. It is supported for the GPT image models only."],
  ['user not a string', { prompt: 'x', model: 'gpt-image-1', user: 42 }, 400, 'invalid_request_error',
    'invalid_type', 'user', "Invalid type for 'user': expected a string, but got an integer instead."],
  // validation order (§7.3): unknown keys → prompt → n → enums (quality before
  // output_compression; size after)
  ['order: unknown key before prompt', { prompt: '', model: 'gpt-image-1', zzz: 1 }, 400,
    'invalid_request_error', 'unknown_parameter', 'zzz', "Unknown parameter: 'zzz'."],
  ['order: prompt before n', { prompt: '', model: 'gpt-image-1', n: 0 }, 400, 'invalid_request_error',
    'empty_string', 'prompt',
    "Invalid 'prompt': empty string. Expected a string with minimum length 1, but got an empty string instead."],
  ['order: n before quality', { prompt: 'x', model: 'gpt-image-1', n: 0, quality: 'ultra' }, 400,
    'invalid_request_error', 'integer_below_min_value', 'n',
    "Invalid 'n': integer below minimum value. Expected a value >= 1, but got 0 instead."],
  ['order: quality before output_compression', { prompt: 'x', model: 'gpt-image-1', quality: 'ultra', output_compression: 101 }, 400,
    'invalid_request_error', 'invalid_value', 'quality', `Invalid value: 'ultra'. ${GPT_QUALITY}`],
  ['order: output_compression before size', { prompt: 'x', model: 'gpt-image-2', output_compression: 101, size: 'bogus' }, 400,
    'invalid_request_error', 'integer_above_max_value', 'output_compression',
    "Invalid 'output_compression': integer above maximum value. Expected a value <= 100, but got 101 instead."],
];

for (const [name, body, status, type, code, param, message] of cases) {
  test(`generations error: ${name}`, async () => {
    const r = await postJSON(srv.url, '/v1/images/generations', body);
    assert.equal(r.status, status, r.text);
    assert.deepEqual(r.json, { error: { message, type, param, code } });
    validate('ErrorResponse', r.json);
    assert.match(r.headers.get('x-request-id'), /^req_[0-9a-f]{32}$/);
    assert.equal(r.headers.get('openai-version'), '2020-10-01');
    assert.match(r.headers.get('content-type'), /^application\/json/);
  });
}

test('prompt of exactly the maximum length is accepted', async () => {
  const r = await postJSON(srv.url, '/v1/images/generations',
    { prompt: long(1000), model: 'dall-e-2', size: '256x256', response_format: 'b64_json' });
  assert.equal(r.status, 200, r.text);
});

test('whitespace-only prompt is accepted', async () => {
  const r = await postJSON(srv.url, '/v1/images/generations',
    { prompt: '   ', model: 'gpt-image-1', quality: 'low' });
  assert.equal(r.status, 200, r.text);
});

test('null counts as omitted for nullable parameters', async () => {
  const r = await postJSON(srv.url, '/v1/images/generations', {
    prompt: 'x', model: 'gpt-image-1', n: null, partial_images: null, output_compression: null,
    quality: null, size: null, background: null, output_format: null, moderation: null, stream: null,
  });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.quality, 'medium');
  assert.equal(r.json.size, '1024x1024');
  assert.equal(r.json.data.length, 1);
});

test('malformed JSON', async () => {
  const r = await postJSON(srv.url, '/v1/images/generations', '{"prompt": "x",');
  assert.equal(r.status, 400);
  assert.equal(r.json.error.type, 'invalid_request_error');
  assert.match(r.json.error.message, /^We could not parse the JSON body of your request\. \(HINT:/);
  assert.equal(r.json.error.param, null);
  assert.equal(r.json.error.code, null);
});

test('body that is JSON but not an object', async () => {
  const r = await postJSON(srv.url, '/v1/images/generations', '[1, 2]');
  assert.equal(r.status, 400);
  assert.equal(r.json.error.code, 'invalid_type');
  assert.match(r.json.error.message, /expected an object, but got an array instead/);
});

test('wrong and missing Content-Type', async () => {
  let r = await http(srv.url + '/v1/images/generations',
    { headers: { 'content-type': 'text/plain' }, body: '{"prompt":"x"}' });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.code, 'unsupported_content_type');
  assert.equal(r.json.error.message,
    "Unsupported content type. This API method only accepts 'application/json' requests, but you specified the header 'Content-Type: text/plain'. Please try again with a supported content type.");
  r = await http(srv.url + '/v1/images/generations', { body: new Blob(['{"prompt":"x"}']) });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.code, 'unsupported_content_type');
  r = await http(srv.url + '/v1/images/generations',
    { headers: { 'content-type': 'Application/JSON; charset=utf-8' }, body: '{"prompt":"x","model":"dall-e-2","size":"256x256"}' });
  assert.equal(r.status, 200, 'media type is case-insensitive, parameters ignored');
});
