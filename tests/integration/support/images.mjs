// Decoders used to check what the server returns: pngjs and jpeg-js (pure JS, independent of
// the server's libpng/libjpeg), a RIFF header reader for WebP plus a full decode with Debian's
// dwebp, so every image is really decoded, not just sniffed.
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function sniff(buf) {
  if (buf.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'png';
  if (buf[0] === 0xff && buf[1] === 0xd8 && buf[2] === 0xff) return 'jpeg';
  if (buf.toString('latin1', 0, 4) === 'RIFF' && buf.toString('latin1', 8, 12) === 'WEBP') return 'webp';
  return 'unknown';
}

// Decodes to { format, width, height, data (RGBA Buffer), hasAlphaChannel }.
export function decode(buf) {
  const format = sniff(buf);
  if (format === 'png') {
    const png = PNG.sync.read(buf);
    // colorType 4 (grey+alpha) or 6 (RGBA), or a tRNS chunk
    const hasAlphaChannel = (png.colorType & 4) !== 0 || buf.includes(Buffer.from('tRNS'));
    return { format, width: png.width, height: png.height, data: png.data, hasAlphaChannel };
  }
  if (format === 'jpeg') {
    const img = jpeg.decode(buf, { useTArray: false, formatAsRGBA: true, maxMemoryUsageInMB: 1024 });
    return { format, width: img.width, height: img.height, data: img.data, hasAlphaChannel: false };
  }
  if (format === 'webp') return decodeWebp(buf);
  throw new Error(`not an image (starts with ${buf.subarray(0, 12).toString('hex')})`);
}

function decodeWebp(buf) {
  const dir = mkdtempSync(join(tmpdir(), 'webp-'));
  try {
    writeFileSync(join(dir, 'in.webp'), buf);
    execFileSync('dwebp', [join(dir, 'in.webp'), '-pam', '-o', join(dir, 'out.pam')], { stdio: 'pipe' });
    const pam = readFileSync(join(dir, 'out.pam'));
    const header = pam.toString('latin1', 0, 200);
    const w = Number(header.match(/WIDTH (\d+)/)[1]);
    const h = Number(header.match(/HEIGHT (\d+)/)[1]);
    const end = pam.indexOf('ENDHDR\n') + 7;
    const data = pam.subarray(end);
    // The VP8X chunk has an alpha flag; simple lossy files (VP8) have none, lossless (VP8L)
    // carries an alpha_is_used bit.
    const chunk = buf.toString('latin1', 12, 16);
    let hasAlphaChannel = false;
    if (chunk === 'VP8X') hasAlphaChannel = (buf[20] & 0x10) !== 0;
    else if (chunk === 'VP8L') hasAlphaChannel = ((buf[24] >> 4) & 1) === 1;
    return { format: 'webp', width: w, height: h, data, hasAlphaChannel };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function alphaStats(img) {
  let transparent = 0, opaque = 0, partial = 0;
  for (let i = 3; i < img.data.length; i += 4) {
    const a = img.data[i];
    if (a === 0) transparent++; else if (a === 255) opaque++; else partial++;
  }
  return { transparent, opaque, partial };
}

export function fromB64(b64) {
  return Buffer.from(b64, 'base64');
}
