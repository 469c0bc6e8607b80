/** The raw node:http baseline for http-rpc: the same small object, as JSON, answered directly. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { benchItem } from '../contract.js';
import { failStart, serve } from '../lib/child.js';

try {
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const id = new URLSearchParams(q < 0 ? '' : url.slice(q + 1)).get('id') ?? '';
    const body = JSON.stringify(benchItem(id));
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  serve({}, { port: (server.address() as AddressInfo).port });
} catch (err) {
  failStart(err);
}
