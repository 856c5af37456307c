// Validates bodies against the schemas of the official OpenAPI document: ImagesResponse,
// ErrorResponse, the stream events. fixtures/openapi-images.json holds those schemas as
// extracted from ../shared/spec/openai-openapi.yaml by tools/extract_openapi_schemas.mjs.
import Ajv2020 from 'ajv/dist/2020.js';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const SPEC = join(here, '../fixtures/openapi-images.json');

let ajv;
function load() {
  if (ajv) return ajv;
  const doc = JSON.parse(readFileSync(SPEC, 'utf8'));
  // The document is OpenAPI 3.1; its schemas are JSON Schema 2020-12 plus OpenAPI keywords
  // (nullable, x-*), which strict mode would reject: validate without strict mode.
  ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  ajv.addSchema({ $id: 'openapi', components: doc.components });
  return ajv;
}

export function validate(name, body) {
  const v = load().getSchema(`openapi#/components/schemas/${name}`);
  if (!v) throw new Error(`no schema ${name}`);
  if (!v(body)) throw new Error(`${name} schema: ${JSON.stringify(v.errors, null, 1).slice(0, 2000)}`);
  return true;
}

export const specPath = SPEC;
