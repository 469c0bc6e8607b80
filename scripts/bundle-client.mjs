// Bundles weft/client (dist/src/client/index.js and what it imports) into one
// ES module, dist/weft-client.js, which gateways serve at /weft-client.js so
// a page can use the client with no build step. Run by `npm run build`.
import { build } from 'esbuild';

await build({
  entryPoints: ['dist/src/client/index.js'],
  outfile: 'dist/weft-client.js',
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  legalComments: 'none',
  banner: { js: '// weft/client as one ES module (docs/protocol.md: weft.v1). Served by weft gateways at /weft-client.js.' },
  logLevel: 'warning',
});
