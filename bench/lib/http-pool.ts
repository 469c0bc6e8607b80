/**
 * A small HTTP/1.1 keep-alive client over raw sockets: GET only, responses
 * with content-length (what weft's gateway and the raw servers send). It
 * costs far less CPU per request than node:http's client, so a generator on
 * the same 2 cores takes less from the servers it measures.
 */
import net from 'node:net';

export interface HttpResponse {
  status: number;
  body: Buffer;
}

interface Waiting {
  path: string;
  resolve: (r: HttpResponse) => void;
  reject: (e: Error) => void;
}

const HEADER_END = Buffer.from('\r\n\r\n');

class Conn {
  readonly socket: net.Socket;
  #buf: Buffer | undefined;
  #current: Waiting | undefined;
  readonly #pool: HttpPool;
  #hostHeader: string;

  constructor(pool: HttpPool, host: string, port: number) {
    this.#pool = pool;
    this.#hostHeader = `${host}:${port}`;
    this.socket = net.connect({ host, port });
    this.socket.setNoDelay(true);
    this.socket.on('data', (d: Buffer) => this.#onData(d));
    const fail = (err: Error): void => {
      const w = this.#current;
      this.#current = undefined;
      this.#pool.dead(this);
      w?.reject(err);
    };
    this.socket.on('error', fail);
    this.socket.on('close', () => fail(new Error('connection closed')));
  }

  get busy(): boolean {
    return this.#current !== undefined;
  }

  send(w: Waiting): void {
    this.#current = w;
    this.socket.write(`GET ${w.path} HTTP/1.1\r\nhost: ${this.#hostHeader}\r\n\r\n`);
  }

  #onData(d: Buffer): void {
    const buf = this.#buf === undefined ? d : Buffer.concat([this.#buf, d]);
    const end = buf.indexOf(HEADER_END);
    if (end < 0) {
      this.#buf = buf;
      return;
    }
    const head = buf.toString('latin1', 0, end);
    const status = Number(head.slice(9, 12));
    const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    const length = m === null ? 0 : Number(m[1]);
    const need = end + 4 + length;
    if (buf.length < need) {
      this.#buf = buf;
      return;
    }
    this.#buf = buf.length > need ? buf.subarray(need) : undefined;
    const w = this.#current!;
    this.#current = undefined;
    w.resolve({ status, body: buf.subarray(end + 4, need) });
    this.#pool.idle(this);
  }
}

export class HttpPool {
  readonly #free: Conn[] = [];
  readonly #all = new Set<Conn>();
  readonly #queue: Waiting[] = [];
  #queueHead = 0;

  constructor(host: string, port: number, connections: number) {
    for (let i = 0; i < connections; i++) {
      const c = new Conn(this, host, port);
      this.#all.add(c);
      this.#free.push(c);
    }
  }

  get(path: string): Promise<HttpResponse> {
    return new Promise((resolve, reject) => {
      const w = { path, resolve, reject };
      const c = this.#free.pop();
      if (c !== undefined) c.send(w);
      else this.#queue.push(w);
    });
  }

  /** @internal */
  idle(c: Conn): void {
    if (this.#queueHead < this.#queue.length) {
      const w = this.#queue[this.#queueHead]!;
      this.#queue[this.#queueHead++] = undefined as unknown as Waiting;
      if (this.#queueHead > 4096 && this.#queueHead * 2 > this.#queue.length) {
        this.#queue.splice(0, this.#queueHead);
        this.#queueHead = 0;
      }
      c.send(w);
    } else this.#free.push(c);
  }

  /** @internal */
  dead(c: Conn): void {
    this.#all.delete(c);
    const i = this.#free.indexOf(c);
    if (i >= 0) this.#free.splice(i, 1);
    if (this.#all.size === 0) {
      for (let j = this.#queueHead; j < this.#queue.length; j++) this.#queue[j]?.reject(new Error('no connection left'));
      this.#queue.length = 0;
      this.#queueHead = 0;
    }
  }

  close(): void {
    for (const c of this.#all) c.socket.destroy();
  }
}
