/**
 * Who the client is, by address: the direct peer, unless that peer is one of
 * the configured proxies (`trustedProxies`), in which case its
 * `X-Forwarded-For` is believed, read right to left past every trusted
 * proxy. And the `x-forwarded-for` the gateway passes on: the client's own
 * value only when a trusted proxy gave it, with the peer appended.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';

/** `::ffff:10.0.0.1` and `10.0.0.1` are one address. */
export function normalizeAddress(address: string): string {
  const a = address.trim().toLowerCase();
  return a.startsWith('::ffff:') && isIP(a.slice(7)) === 4 ? a.slice(7) : a;
}

/** The addresses of an X-Forwarded-For header (every header line), left to right. */
function forwardedChain(headers: IncomingHttpHeaders): string[] {
  const raw = headers['x-forwarded-for'];
  if (raw === undefined) return [];
  const lines = Array.isArray(raw) ? raw : [raw];
  const out: string[] = [];
  for (const line of lines) for (const part of line.split(',')) if (part.trim() !== '') out.push(part.trim());
  return out;
}

export class ClientAddresses {
  readonly #trusted: ReadonlySet<string>;

  constructor(trustedProxies: readonly string[]) {
    this.#trusted = new Set(trustedProxies.map(normalizeAddress));
  }

  #isTrusted(address: string): boolean {
    return this.#trusted.has(normalizeAddress(address));
  }

  /** The client's address: the peer's, or (from a trusted peer) the rightmost forwarded address that is not a trusted proxy. */
  clientAddress(peer: string, headers: IncomingHttpHeaders): string {
    if (!this.#isTrusted(peer)) return peer;
    const chain = forwardedChain(headers);
    for (let i = chain.length - 1; i >= 0; i--) {
      const hop = chain[i]!;
      if (isIP(normalizeAddress(hop)) === 0) return peer; // not an address: believe nothing further left
      if (!this.#isTrusted(hop) || i === 0) return normalizeAddress(hop);
    }
    return peer;
  }

  /** The x-forwarded-for a service sees: the peer alone, or a trusted peer's chain with the peer appended. */
  forwardedFor(peer: string, headers: IncomingHttpHeaders): string {
    if (peer === '') return '';
    if (!this.#isTrusted(peer)) return peer;
    return [...forwardedChain(headers), peer].join(', ');
  }
}
