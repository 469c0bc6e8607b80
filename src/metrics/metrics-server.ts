/**
 * `GET /metrics` on a port of its own, for processes with no HTTP server
 * (hosts: `createHost({ metrics: { port } })`). Gateways serve the same on
 * their HTTP port.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { scrape } from './metrics.js';

export interface MetricsServer {
  /** `http://host:port/metrics` */
  readonly url: string;
  close(): Promise<void>;
}

/** Answers a scrape: the process's metrics in the Prometheus text format. */
export function serveMetrics(res: http.ServerResponse): void {
  scrape().then(
    ({ body, contentType }) => {
      res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
      res.end(body);
    },
    () => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('metrics could not be collected\n');
    },
  );
}

export async function startMetricsServer(host: string, port: number): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && (req.url ?? '/').split('?')[0] === '/metrics') return serveMetrics(res);
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('only GET /metrics here\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shown}:${address.port}/metrics`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
