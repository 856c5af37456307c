// Extracts the Images API schemas (and everything they reference) from the official OpenAPI
// document into tests/integration/fixtures/openapi-images.json, so tests need no ../shared.
// usage: node tools/extract_openapi_schemas.mjs ../shared/spec/openai-openapi.yaml
import yaml from '../tests/integration/node_modules/js-yaml/index.js';
import { readFileSync, writeFileSync } from 'node:fs';

const roots = ['ImagesResponse', 'ErrorResponse', 'ImageGenStreamEvent', 'ImageEditStreamEvent',
  'ImageGenPartialImageEvent', 'ImageGenCompletedEvent', 'ImageEditPartialImageEvent',
  'ImageEditCompletedEvent', 'CreateImageRequest', 'CreateImageEditRequest',
  'CreateImageVariationRequest', 'Model', 'ListModelsResponse'];
const doc = yaml.load(readFileSync(process.argv[2], 'utf8'));
const all = doc.components.schemas;
const keep = {};
const todo = [...roots];
while (todo.length) {
  const name = todo.pop();
  if (keep[name] || !all[name]) continue;
  keep[name] = all[name];
  JSON.stringify(all[name], (k, v) => {
    if (k === '$ref' && typeof v === 'string') todo.push(v.split('/').pop());
    return v;
  });
}
const out = {
  source: 'openai/openai-openapi openapi.yaml (MIT licence, see openai-openapi.LICENSE), ' +
    `schemas reachable from ${roots.join(', ')}`,
  components: { schemas: keep },
};
writeFileSync('tests/integration/fixtures/openapi-images.json', JSON.stringify(out, null, 1) + '\n');
console.log(`${Object.keys(keep).length} schemas`);
