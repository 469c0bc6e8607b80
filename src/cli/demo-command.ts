/**
 * `weft demo`: what `npm start` runs (examples/demo.ts), from an install of
 * the package too: the package ships dist/examples/ and examples/ (the
 * sources their maps point at). The demo program is an example, written
 * against the package's public surface as a user's program would be, so it
 * is loaded by its path when the command runs, not imported by src/.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readFlagFile } from './flags.js';
import type { CliCommand } from './common.js';

// dist/src/cli/demo-command.js -> dist/examples/demo.js
const DEMO_PROGRAM = new URL('../../examples/demo.js', import.meta.url);

export const DEMO_COMMAND: CliCommand = {
  synopsis: '[--port 5000] [options]',
  about:
    'run the demo (what npm start runs): a host and a gateway in one process, no Redis.\n' +
    'The host serves the greeter and the WebSocket test service, the gateway listens on 127.0.0.1 and it prints the URLs to try. With WEFT_JWT_SECRET or --jwt-secret-file, every request needs a token (the demo page gets one).',
  flags: [
    { name: 'port', kind: 'port', value: '<n>', env: 'WEFT_HTTP_PORT', default: '5000', help: 'HTTP and WebSocket port (0: any free one)' },
    {
      name: 'jwt-secret-file',
      kind: 'string',
      value: '<path>',
      help: 'HS256 key in a file (trimmed); otherwise env WEFT_JWT_SECRET. At least 32 bytes: then tokens are required',
    },
  ],
  async run(flags) {
    const program = fileURLToPath(DEMO_PROGRAM);
    if (!existsSync(program)) {
      throw new Error(`the demo program is not in this install (${program}): build it with npm run build, or reinstall weft`);
    }
    // The demo program reads its settings from the environment, as under npm start.
    process.env['WEFT_HTTP_PORT'] = String(flags.port('port')!.value);
    const secretFile = flags.string('jwt-secret-file');
    if (secretFile !== undefined) process.env['WEFT_JWT_SECRET'] = readFlagFile(secretFile.source, secretFile.value, 'demo');
    await import(DEMO_PROGRAM.href);
  },
};
