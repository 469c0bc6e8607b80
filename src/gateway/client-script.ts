/**
 * `GET /weft-client.js`: weft/client as one ES module (bundled by `npm run
 * build` into dist/weft-client.js), so a page uses the client with no build
 * step. Read once; its sha384 goes into the demo page's `integrity`.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';

export interface ClientScript {
  body: Buffer;
  /** `sha384-<base64>`, for a `<script>` or `<link rel="modulepreload">` integrity attribute. */
  integrity: string;
  etag: string;
}

let loaded: ClientScript | null | undefined;

/** The bundled client, or null when it was not built (running the TypeScript without `npm run build`). */
export function clientScript(): ClientScript | null {
  if (loaded !== undefined) return loaded;
  try {
    // dist/src/gateway/client-script.js -> dist/weft-client.js
    const body = readFileSync(new URL('../../weft-client.js', import.meta.url));
    const digest = createHash('sha384').update(body).digest('base64');
    loaded = { body, integrity: `sha384-${digest}`, etag: `"${digest.slice(0, 27)}"` };
  } catch {
    loaded = null;
  }
  return loaded;
}

/** Answers `GET /weft-client.js` with the built client (304 when the client has it). */
export function serveClientScript(script: ClientScript, ifNoneMatch: string | undefined, res: ServerResponse): void {
  if (ifNoneMatch === script.etag) {
    res.writeHead(304, { etag: script.etag });
    res.end();
    return;
  }
  res.writeHead(200, {
    'content-type': 'text/javascript; charset=utf-8',
    'content-length': script.body.length,
    'cache-control': 'public, max-age=300',
    etag: script.etag,
  });
  res.end(script.body);
}
