// `npm run build`: bundles src/ with MapLibre GL JS into fieldline/server/map/static/
// (map.js and map.css, MapLibre's stylesheet included), the files Flask serves and the
// project commits. Prints each file's size.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';

const outdir = fileURLToPath(new URL('../fieldline/server/map/static/', import.meta.url));

const result = await build({
  entryPoints: { map: fileURLToPath(new URL('src/main.js', import.meta.url)) },
  outdir,
  bundle: true,
  format: 'esm',
  minify: true,
  // Browsers of the last few years, tablets included; MapLibre itself needs WebGL 2.
  target: ['chrome100', 'firefox100', 'safari15', 'edge100'],
  // Licence comments (MapLibre's BSD notice) stay at the end of the bundle.
  legalComments: 'eof',
  metafile: true,
  logLevel: 'warning',
});

for (const file of Object.keys(result.metafile.outputs).sort()) {
  const bytes = readFileSync(file);
  const kib = (n) => `${(n / 1024).toFixed(0)} KiB`;
  console.log(`${file}: ${kib(bytes.length)} (${kib(gzipSync(bytes).length)} gzipped)`);
}
