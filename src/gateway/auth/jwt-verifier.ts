/**
 * Verifies a token (a JWT) with jose: signature, algorithm, `exp` / `nbf`
 * (with the clock tolerance), issuer and audience. Answers with the claims,
 * the businessId the configured claim names, and when the token stops
 * holding; refuses with the WeftError to answer: 401 for a token that does
 * not verify, 403 for one without a usable businessId claim, 503 / 504 when
 * the JWKS cannot be fetched.
 */
import { errors, jwtVerify, type JWTPayload, type JWTVerifyOptions } from 'jose';
import { WeftError } from '../../errors.js';
import type { Identity } from './auth-request.js';
import { businessIdProblem } from './business-id.js';
import { jwtKeyOf, type JwtKey, type JwtSettings } from './jwt-keys.js';

export interface VerifiedToken {
  /** The token's claims, frozen. */
  readonly identity: Identity;
  /** The configured claim, as a businessId. */
  readonly businessId: string;
  /** Epoch ms at which the token stops holding (`exp` plus the clock tolerance); undefined without `exp`. */
  readonly expiresAt: number | undefined;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

/** What a claim holds, as a businessId: a string, or a whole number written out. */
function claimAsBusinessId(value: unknown): string | undefined {
  if (typeof value === 'string' && value !== '') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  return undefined;
}

export class JwtVerifier {
  readonly #key: JwtKey;
  readonly #options: JWTVerifyOptions;
  readonly #claim: string;
  readonly #toleranceMs: number;
  readonly #jwksUrl: string | undefined;
  readonly #timeoutMs: number;

  /** `timeoutMs` bounds one JWKS fetch. Throws InvalidOption for bad settings. */
  constructor(settings: JwtSettings, timeoutMs: number) {
    this.#key = jwtKeyOf(settings, timeoutMs);
    this.#claim = settings.businessIdClaim;
    this.#toleranceMs = settings.clockToleranceSeconds * 1000;
    this.#jwksUrl = settings.jwksUrl;
    this.#timeoutMs = timeoutMs;
    const options: JWTVerifyOptions = {
      algorithms: this.#key.algorithms,
      clockTolerance: settings.clockToleranceSeconds,
      requiredClaims: settings.requireExpiry ? ['exp'] : [],
    };
    if (settings.issuer !== undefined) options.issuer = settings.issuer;
    if (settings.audience !== undefined) options.audience = settings.audience;
    this.#options = options;
  }

  /** The claim the businessId is read from. */
  get businessIdClaim(): string {
    return this.#claim;
  }

  async verify(token: string): Promise<VerifiedToken> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.#key.key, this.#options));
    } catch (e) {
      throw this.#refusal(e);
    }
    const businessId = claimAsBusinessId(payload[this.#claim]);
    if (businessId === undefined) {
      throw new WeftError('Unauthorized', `the token has no "${this.#claim}" claim to take the businessId from`);
    }
    const problem = businessIdProblem(businessId);
    if (problem !== undefined) throw new WeftError('Unauthorized', `the token's "${this.#claim}" claim: ${problem}`);
    return {
      identity: deepFreeze(payload as Record<string, unknown>),
      businessId,
      expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 + this.#toleranceMs : undefined,
    };
  }

  /** The WeftError for what jose threw. */
  #refusal(e: unknown): WeftError {
    const unauthenticated = (message: string): WeftError => new WeftError('Unauthenticated', message, { cause: e });
    if (e instanceof errors.JWTExpired) return unauthenticated('token expired');
    if (e instanceof errors.JWTClaimValidationFailed) return unauthenticated(`token refused: ${e.message}`);
    if (e instanceof errors.JWSSignatureVerificationFailed) return unauthenticated('token signature is not valid');
    if (e instanceof errors.JOSEAlgNotAllowed) return unauthenticated(`token algorithm is not one of ${this.#key.algorithms.join(', ')}`);
    if (e instanceof errors.JWKSNoMatchingKey) return unauthenticated('no key of the JWKS matches the token');
    if (e instanceof errors.JWKSMultipleMatchingKeys) return unauthenticated('more than one key of the JWKS matches the token');
    if (e instanceof errors.JWSInvalid || e instanceof errors.JWTInvalid) return unauthenticated('token is malformed');
    if (e instanceof errors.JOSENotSupported) return unauthenticated('token uses an algorithm or key this gateway does not support');
    if (this.#jwksUrl !== undefined) {
      if (e instanceof errors.JWKSTimeout) {
        return new WeftError('Timeout', `the JWKS at ${this.#jwksUrl} did not answer within ${this.#timeoutMs} ms`, { cause: e });
      }
      // Not 200, not a JWKS, or not reachable: the gateway's problem, not the token's.
      if (!(e instanceof errors.JOSEError) || e.code === 'ERR_JOSE_GENERIC' || e instanceof errors.JWKSInvalid) {
        return new WeftError('ServiceUnavailable', `could not fetch the JWKS at ${this.#jwksUrl}`, { cause: e });
      }
    }
    return unauthenticated('token could not be verified');
  }
}
