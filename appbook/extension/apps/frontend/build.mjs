// Builds the app page's script and styles into ../template/static, which is committed (the
// Python package needs no Node.js): `npm ci && npm run build` (DEBUG_BUILD=1: unminified,
// for reading stack traces; do not commit that build).
//
// Every file name carries its content hash and manifest.json maps the names the template
// asks for to them, so the server can let browsers keep each file for good.
import * as esbuild from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, '..', 'template', 'static');

// Font Awesome's CSS declares five font formats; browsers an app supports take woff2.
const woff2Only = {
  name: 'woff2-only',
  setup(build) {
    build.onLoad({ filter: /font-awesome\.css$/ }, (args) => {
      const css = readFileSync(args.path, 'utf8').replace(
        /@font-face\s*{[^}]*}/,
        "@font-face { font-family: 'FontAwesome'; src: url('../fonts/fontawesome-webfont.woff2') format('woff2'); font-weight: normal; font-style: normal; font-display: block; }"
      );
      return { contents: css, loader: 'css', resolveDir: dirname(args.path) };
    });
  },
};

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const result = await esbuild.build({
  absWorkingDir: here,
  entryPoints: { app: 'src/index.js', style: 'src/app.css' },
  bundle: true,
  minify: !process.env.DEBUG_BUILD,
  format: 'iife',
  target: ['es2020', 'chrome90', 'firefox90', 'safari14'],
  outdir: out,
  entryNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  loader: { '.woff2': 'file' },
  alias: { 'sanitize-html': './src/sanitize-html.js' },
  legalComments: 'eof',
  metafile: true,
  plugins: [woff2Only],
  define: { 'process.env.NODE_ENV': '"production"' },
  logLevel: 'info',
});

// {"app.js": "app-HASH.js", "style.css": ..., "fontawesome-webfont.woff2": ...}, plus a
// hash of the sources so a test can tell the build is older than its sources.
const manifest = {};
for (const file of Object.keys(result.metafile.outputs)) {
  const name = basename(file);
  manifest[name.replace(/-[A-Z0-9]{8}\./, '.')] = name;
}
const sources = createHash('sha256');
for (const file of ['package.json', 'package-lock.json', 'build.mjs']) {
  sources.update(readFileSync(join(here, file)));
}
for (const file of ['index.js', 'app.css', 'sanitize-html.js']) {
  sources.update(readFileSync(join(here, 'src', file)));
}
manifest.sources = sources.digest('hex');
writeFileSync(join(out, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
console.log('manifest', relative(here, join(out, 'manifest.json')), manifest);
