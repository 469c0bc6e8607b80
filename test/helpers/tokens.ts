/**
 * Tokens for the tests, made with jose, and a JWKS server on 127.0.0.1
 * port 0 whose keys a test can change (rotation) or stop answering.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK, type JWTPayload } from 'jose';

/** An HS256 secret as long as the gateway wants (32 bytes). */
export const SECRET = 'test-secret-of-thirty-two-bytes!';

export interface SignOptions {
  alg?: string;
  kid?: string;
  /** Seconds from now; default 300. `null` for no `exp`. */
  expiresIn?: number | null;
  issuer?: string;
  audience?: string;
}

/** A token with `claims`, signed with `key` (default the HS256 SECRET). */
export function signToken(
  claims: JWTPayload,
  key: CryptoKey | Uint8Array = new TextEncoder().encode(SECRET),
  options: SignOptions = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const header: { alg: string; kid?: string } = { alg: options.alg ?? 'HS256' };
  if (options.kid !== undefined) header.kid = options.kid;
  const jwt = new SignJWT(claims).setProtectedHeader(header).setIssuedAt(now);
  const expiresIn = options.expiresIn === undefined ? 300 : options.expiresIn;
  if (expiresIn !== null) jwt.setExpirationTime(now + expiresIn);
  if (options.issuer !== undefined) jwt.setIssuer(options.issuer);
  if (options.audience !== undefined) jwt.setAudience(options.audience);
  return jwt.sign(key);
}

/** An HS256 token for businessId `sub`. */
export function tokenFor(sub: string, extra: JWTPayload = {}, options: SignOptions = {}): Promise<string> {
  return signToken({ sub, ...extra }, undefined, options);
}

export interface SigningKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export async function newSigningKey(kid: string, alg = 'ES256'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, publicJwk };
}

export function signWith(key: SigningKey, claims: JWTPayload, options: SignOptions = {}): Promise<string> {
  return signToken(claims, key.privateKey, { ...options, alg: key.alg, kid: key.kid });
}

export interface JwksServer {
  url: string;
  /** The keys it serves from now on. */
  keys: JWK[];
  /** How many times it was fetched. */
  readonly fetches: number;
  /** From now on, requests are held open and never answered. */
  hang(): void;
}

/** A JWKS endpoint on 127.0.0.1 port 0, stopped after the test. */
export async function startJwksServer(t: TestContext, keys: JWK[]): Promise<JwksServer> {
  let fetches = 0;
  let hanging = false;
  const state = { keys };
  const server = http.createServer((_req, res) => {
    fetches += 1;
    if (hanging) return; // never answered
    const body = JSON.stringify({ keys: state.keys });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    get keys() {
      return state.keys;
    },
    set keys(next: JWK[]) {
      state.keys = next;
    },
    get fetches() {
      return fetches;
    },
    hang() {
      hanging = true;
    },
  };
}
