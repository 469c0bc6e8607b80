/**
 * The key a token must be signed with, from the one key source `auth.jwt`
 * names (a shared `secret`, a `publicKey` PEM, or a `jwksUrl`), and the
 * algorithms that key may verify. An HMAC secret never verifies an
 * asymmetric algorithm and a public key never an HMAC one, so a token cannot
 * choose how it is checked (no algorithm confusion).
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { createRemoteJWKSet, type JWTVerifyGetKey } from 'jose';
import { invalidOption } from '../../errors.js';

/** The `auth.jwt` options, as resolved. */
export interface JwtSettings {
  readonly secret: string | undefined;
  readonly publicKey: string | undefined;
  readonly jwksUrl: string | undefined;
  readonly algorithms: readonly string[] | undefined;
  readonly issuer: string | undefined;
  readonly audience: string | undefined;
  readonly clockToleranceSeconds: number;
  readonly businessIdClaim: string;
  readonly requireExpiry: boolean;
  readonly jwksCooldownMs: number;
  readonly jwksCacheMaxAgeMs: number;
}

/** RFC 7518: an HMAC key at least as long as the hash. */
export const MIN_SECRET_BYTES = 32;

const HMAC = ['HS256', 'HS384', 'HS512'];
const RSA = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
const RSA_PSS = ['PS256', 'PS384', 'PS512'];
const EDDSA = ['EdDSA', 'Ed25519'];
const EC_BY_CURVE: Readonly<Record<string, string>> = { prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' };
const ASYMMETRIC = [...RSA, 'ES256', 'ES384', 'ES512', ...EDDSA];
/** Without `algorithms`, a JWKS may hold RSA, P-256 or Ed25519 keys. */
const JWKS_DEFAULT = ['RS256', 'ES256', 'EdDSA'];

export type KeySource = 'secret' | 'publicKey' | 'jwksUrl';

/** What a public key PEM may verify, and what it verifies when `algorithms` is not given. */
function publicKeyAlgorithms(key: KeyObject): { allowed: string[]; fallback: string[] } {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return { allowed: RSA, fallback: ['RS256'] };
    case 'rsa-pss':
      return { allowed: RSA_PSS, fallback: ['PS256'] };
    case 'ed25519':
      return { allowed: EDDSA, fallback: ['EdDSA'] };
    case 'ec': {
      const alg = EC_BY_CURVE[key.asymmetricKeyDetails?.namedCurve ?? ''];
      if (alg !== undefined) return { allowed: [alg], fallback: [alg] };
      break;
    }
  }
  throw invalidOption('auth.jwt.publicKey', `is a ${key.asymmetricKeyType ?? 'unknown'} key; use an RSA, P-256/384/521 or Ed25519 key`);
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

function checkAlgorithms(given: readonly string[] | undefined, allowed: readonly string[], what: string): void {
  if (given === undefined) return;
  if (given.length === 0) throw invalidOption('auth.jwt.algorithms', 'must name at least one algorithm');
  for (const alg of given) {
    if (!allowed.includes(alg))
      throw invalidOption('auth.jwt.algorithms', `cannot hold ${JSON.stringify(alg)} with ${what}: use ${allowed.join(', ')}`);
  }
}

function parsePublicKey(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (e) {
    throw invalidOption('auth.jwt.publicKey', `must be a PEM public key or certificate: ${(e as Error).message}`);
  }
  return key;
}

/** Checks `auth.jwt`: exactly one key source, algorithms that key can verify, a long enough secret, a usable URL. */
export function checkJwtSettings(jwt: JwtSettings): KeySource {
  const sources = (['secret', 'publicKey', 'jwksUrl'] as const).filter((name) => jwt[name] !== undefined);
  if (sources.length !== 1) {
    throw invalidOption(
      'auth.jwt',
      `needs exactly one key source (secret, publicKey or jwksUrl), got ${sources.length === 0 ? 'none' : sources.join(' and ')}`,
    );
  }
  const source = sources[0]!;
  if (source === 'secret') {
    if (Buffer.byteLength(jwt.secret!) < MIN_SECRET_BYTES) {
      throw invalidOption('auth.jwt.secret', `must be at least ${MIN_SECRET_BYTES} bytes (an HS256 key as long as its hash)`);
    }
    checkAlgorithms(jwt.algorithms, HMAC, 'a secret');
  } else if (source === 'publicKey') {
    checkAlgorithms(jwt.algorithms, publicKeyAlgorithms(parsePublicKey(jwt.publicKey!)).allowed, 'this public key');
  } else {
    let url: URL;
    try {
      url = new URL(jwt.jwksUrl!);
    } catch {
      throw invalidOption('auth.jwt.jwksUrl', `must be a URL, got ${JSON.stringify(jwt.jwksUrl)}`);
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(url.hostname))) {
      throw invalidOption('auth.jwt.jwksUrl', 'must be https (plain http only to a loopback address)');
    }
    checkAlgorithms(jwt.algorithms, ASYMMETRIC, 'a JWKS');
  }
  return source;
}

/** The key (or key set) of checked settings, and the algorithms it verifies. */
export interface JwtKey {
  readonly key: Uint8Array | KeyObject | JWTVerifyGetKey;
  readonly algorithms: string[];
  readonly source: KeySource;
}

/**
 * Builds the key. A JWKS is fetched on first use, cached, fetched again
 * when `jwksCacheMaxAgeMs` has passed or when a token names a key it does
 * not hold (at most once per `jwksCooldownMs`): jose's `createRemoteJWKSet`.
 */
export function jwtKeyOf(jwt: JwtSettings, fetchTimeoutMs: number): JwtKey {
  const source = checkJwtSettings(jwt);
  if (source === 'secret') return { key: new TextEncoder().encode(jwt.secret), algorithms: [...(jwt.algorithms ?? ['HS256'])], source };
  if (source === 'publicKey') {
    const key = parsePublicKey(jwt.publicKey!);
    return { key, algorithms: [...(jwt.algorithms ?? publicKeyAlgorithms(key).fallback)], source };
  }
  const key = createRemoteJWKSet(new URL(jwt.jwksUrl!), {
    timeoutDuration: Math.ceil(fetchTimeoutMs),
    cooldownDuration: jwt.jwksCooldownMs,
    cacheMaxAge: jwt.jwksCacheMaxAgeMs,
  });
  return { key, algorithms: [...(jwt.algorithms ?? JWKS_DEFAULT)], source };
}
