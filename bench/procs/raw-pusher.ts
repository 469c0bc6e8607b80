/** Feeds the raw ws server over one persistent TCP link: `<businessId> <payload>\n`. */
import net from 'node:net';
import { childArgs, failStart, onParentMessage, serve } from '../lib/child.js';
import { Generator, type GenSpec } from '../lib/generator.js';

const args = childArgs<{ feedPort: number }>();
try {
  const socket = net.connect({ host: '127.0.0.1', port: args.feedPort });
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  // Writes queue in the socket while the kernel buffer is full; the window bounds them.
  const gen = new Generator();
  onParentMessage('delivered', (n) => gen.onDelivered(n as number));
  serve({
    generate: (spec: GenSpec) =>
      gen.run(spec, (bid, payload) => {
        socket.write(`${bid} ${payload}\n`);
      }),
  });
} catch (err) {
  failStart(err);
}
