// Test images made on the fly (no binary fixtures): PNGs with pngjs, JPEGs with jpeg-js, WebP
// with Debian's cwebp; masks; raw multipart bodies for the malformed-upload tests.
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// A deterministic RGBA picture: gradients and stripes, seeded, so different seeds differ.
export function rgba(width, height, seed = 1, alpha = 255) {
  const data = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      data[i] = (x * 255 / width + seed * 37) & 255;
      data[i + 1] = (y * 255 / height + seed * 91) & 255;
      data[i + 2] = ((x >> 4) + (y >> 4) + seed) % 2 ? 200 : 40;
      data[i + 3] = typeof alpha === 'function' ? alpha(x, y) : alpha;
    }
  }
  return { width, height, data };
}

// colorType: 6 RGBA, 2 RGB, 0 grey, 4 grey+alpha
export function png(img, colorType = 6) {
  const p = new PNG({ width: img.width, height: img.height, colorType, inputColorType: 6, inputHasAlpha: true });
  img.data.copy(p.data);
  return PNG.sync.write(p, { colorType, inputColorType: 6, inputHasAlpha: true });
}

export function jpegOf(img, quality = 90) {
  return jpeg.encode({ data: img.data, width: img.width, height: img.height }, quality).data;
}

export function webpOf(img) {
  const dir = mkdtempSync(join(tmpdir(), 'cwebp-'));
  try {
    writeFileSync(join(dir, 'in.png'), png(img));
    execFileSync('cwebp', ['-quiet', '-q', '90', join(dir, 'in.png'), '-o', join(dir, 'out.webp')]);
    return readFileSync(join(dir, 'out.webp'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// A mask the size of img: alpha 0 (edit here) inside the rectangle, 255 elsewhere.
export function maskWithHole(width, height, [x0, y0, x1, y1]) {
  return rgba(width, height, 0, (x, y) => (x >= x0 && x < x1 && y >= y0 && y < y1 ? 0 : 255));
}

// A raw multipart body: parts = [{ name, value } | { name, filename, type, data }].
export function multipart(parts, boundary = 'imagesd-test-boundary-7MA4YWxkTrZu0gW') {
  const chunks = [];
  for (const p of parts) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"`;
    if (p.filename !== undefined) head += `; filename="${p.filename}"`;
    head += '\r\n';
    if (p.type) head += `Content-Type: ${p.type}\r\n`;
    head += '\r\n';
    chunks.push(Buffer.from(head), Buffer.isBuffer(p.data) ? p.data : Buffer.from(p.data ?? p.value ?? ''), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}
