/**
 * How a verified identity reaches the services an HTTP request calls: the
 * claims as JSON in the `x-weft-identity` header of the call context (so it
 * also travels with the nested calls those services make). The gateway
 * always drops a client's own `x-weft-identity`, so the header is only ever
 * one the gateway set.
 */
import { currentContext } from '../../rpc/context.js';
import type { Identity } from './auth-request.js';

/** The forwarded header holding the identity. */
export const IDENTITY_HEADER = 'x-weft-identity';

export function encodeIdentity(identity: Identity): string {
  return JSON.stringify(identity);
}

/**
 * The verified identity (the token's claims) of the request being served,
 * or undefined outside a call or when the gateway verified no token.
 *
 * @example
 * implement(IGreeterAppService, {
 *   greet: (name) => `hello ${name}, signed in as ${String(currentIdentity()?.['sub'] ?? 'nobody')}`,
 * });
 */
export function currentIdentity(): Identity | undefined {
  const header = currentContext()?.headers[IDENTITY_HEADER];
  if (header === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(header);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? Object.freeze(value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
