import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createHost, memoryCluster } from '../src/index.js';
import { ITestAppService, testService } from './fixtures/services.js';
import { quietLogger } from './helpers/index.js';

function selfSignedCert(): { key: Buffer; cert: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), 'weft-tls-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    return { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('nodes call each other over TLS links, and a plain TCP peer gets no answer', async (t) => {
  const { key, cert } = selfSignedCert();
  const tls = { server: { key, cert }, client: { ca: cert, servername: '127.0.0.1' } };
  const cluster = memoryCluster();
  let serverId = '';
  const server = await createHost({ cluster, logger: quietLogger(), tls, services: [testService(() => serverId)] }).start();
  serverId = server.nodeId;
  t.after(() => server.stop());
  const caller = await createHost({ cluster, logger: quietLogger(), tls }).start();
  t.after(() => caller.stop());

  assert.equal(await caller.proxy(ITestAppService).echo('over tls'), 'over tls');
  assert.equal(await caller.proxy(ITestAppService).whoami(), server.nodeId);

  // A plain TCP client sees a TLS server: what it reads is not a weft Challenge frame.
  const address = server.linkAddress!;
  const socket = net.connect(address.port, address.host);
  t.after(() => socket.destroy());
  socket.write('GET / HTTP/1.1\r\n\r\n');
  const reply = await new Promise<Buffer>((resolve) => {
    const chunks: Buffer[] = [];
    socket.on('data', (c) => chunks.push(c));
    socket.on('close', () => resolve(Buffer.concat(chunks)));
    socket.on('error', () => resolve(Buffer.concat(chunks)));
  });
  assert.ok(!reply.includes(Buffer.from(server.nodeId)), 'the node id must not be readable without TLS');
});
