/**
 * `GET /demo/token?businessId=...` of the demo page (`demo.issueTokens`):
 * signs a short-lived token for any businessId with `auth.jwt.secret`.
 * It lets anyone in as anyone, which is what a demo of token mode needs and
 * what nothing else should have.
 */
import { SignJWT } from 'jose';
import { WeftError } from '../errors.js';
import { businessIdProblem } from './auth/business-id.js';
import type { JwtSettings } from './auth/jwt-keys.js';

/** How long a demo token holds. */
export const DEMO_TOKEN_TTL_SECONDS = 600;

/** A token the gateway's own verifier accepts, for `businessId`. */
export async function demoToken(jwt: JwtSettings, businessId: string | undefined): Promise<{ token: string; expiresIn: number }> {
  if (businessId === undefined || businessId === '') throw new WeftError('BadRequest', 'businessId is required (?businessId=)');
  const problem = businessIdProblem(businessId);
  if (problem !== undefined) throw new WeftError('BadRequest', problem);
  const alg = jwt.algorithms?.[0] ?? 'HS256';
  const now = Math.floor(Date.now() / 1000);
  const sign = new SignJWT({ [jwt.businessIdClaim]: businessId, name: `demo user of ${businessId}` })
    .setProtectedHeader({ alg, typ: 'JWT' })
    .setIssuedAt(now)
    .setExpirationTime(now + DEMO_TOKEN_TTL_SECONDS);
  if (jwt.issuer !== undefined) sign.setIssuer(jwt.issuer);
  if (jwt.audience !== undefined) sign.setAudience(jwt.audience);
  const token = await sign.sign(new TextEncoder().encode(jwt.secret));
  return { token, expiresIn: DEMO_TOKEN_TTL_SECONDS };
}
