/**
 * The Socket.IO 4.8 baseline server: @socket.io/redis-adapter, websocket
 * transport only, each client joins the room named by its businessId.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';
import { childArgs, failStart, serve } from '../lib/child.js';

const args = childArgs<{ redisUrl: string; key: string }>();
try {
  const pub = new Redis(args.redisUrl);
  const sub = pub.duplicate();
  const server = http.createServer();
  const io = new Server(server, {
    transports: ['websocket'],
    serveClient: false,
    perMessageDeflate: false,
    adapter: createAdapter(pub, sub, { key: args.key }),
  });
  io.on('connection', (socket) => {
    const businessId = socket.handshake.query['businessId'];
    if (typeof businessId !== 'string' || businessId === '') return void socket.disconnect(true);
    void socket.join(businessId);
    // The request-reply baseline: an acknowledged event answered with what it carried.
    socket.on('ping', (text: unknown, ack: unknown) => {
      if (typeof ack === 'function') (ack as (reply: unknown) => void)(text);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  serve(
    {
      count: () => io.of('/').sockets.size,
      exit: () => {
        void io.close();
        pub.disconnect();
        sub.disconnect();
        setImmediate(() => process.exit(0));
        return true;
      },
    },
    { port: (server.address() as AddressInfo).port },
  );
} catch (err) {
  failStart(err);
}
