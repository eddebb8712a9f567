// The crew app's part of `npm run build`: web/crew/ bundled with MQTT.js, idb and MapLibre GL JS
// into fieldline/server/crew_app/static/ (crew.js, crew.css, the service worker's sw.js and
// the icons), the files Flask serves and the project commits. Prints each file's size.
import { build } from 'esbuild';
import { copyFileSync, readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const outdir = here('../../fieldline/server/crew_app/static/');

const common = {
  bundle: true,
  minify: true,
  // Phones and tablets of the last few years; MapLibre itself needs WebGL 2.
  target: ['chrome100', 'firefox100', 'safari15', 'edge100'],
  legalComments: 'eof',
  metafile: true,
  logLevel: 'warning',
  outdir,
};

const app = await build({ ...common, entryPoints: { crew: here('main.js') }, format: 'esm' });
// The service worker is a classic script: not every browser runs module workers.
const worker = await build({ ...common, entryPoints: { sw: here('sw.js') }, format: 'iife' });

const files = [...Object.keys(app.metafile.outputs), ...Object.keys(worker.metafile.outputs)];
for (const icon of ['icon-192.png', 'icon-512.png']) {
  copyFileSync(here(`icons/${icon}`), `${outdir}${icon}`);
}
for (const file of files.sort()) {
  const bytes = readFileSync(file);
  const kib = (n) => `${(n / 1024).toFixed(0)} KiB`;
  console.log(`${file}: ${kib(bytes.length)} (${kib(gzipSync(bytes).length)} gzipped)`);
}
