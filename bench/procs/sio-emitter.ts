/** Pushes for the Socket.IO baseline from its own process with @socket.io/redis-emitter. */
import { Emitter } from '@socket.io/redis-emitter';
import { Redis } from 'ioredis';
import { childArgs, failStart, onParentMessage, serve } from '../lib/child.js';
import { Generator, type GenSpec } from '../lib/generator.js';

const args = childArgs<{ redisUrl: string; key: string }>();
try {
  const redis = new Redis(args.redisUrl);
  await redis.ping();
  const emitter = new Emitter(redis, { key: args.key });
  const gen = new Generator();
  onParentMessage('delivered', (n) => gen.onDelivered(n as number));
  serve({
    generate: (spec: GenSpec) =>
      gen.run(spec, (bid, payload) => {
        emitter.to(bid).emit('m', payload);
      }),
    exit: () => {
      redis.disconnect();
      setImmediate(() => process.exit(0));
      return true;
    },
  });
} catch (err) {
  failStart(err);
}
