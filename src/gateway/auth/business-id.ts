/**
 * Where a client names the businessId of a request, in the one lookup order
 * of the gateway (query `businessId`, query `bussinessId` (Silky's
 * spelling), then the `businessId` and `bussinessId` headers; names match
 * case-insensitively), and what a good businessId is.
 */
import type { IncomingHttpHeaders } from 'node:http';

export const MAX_BUSINESS_ID_LENGTH = 256;
// eslint-disable-next-line no-control-regex -- control characters (C0, DEL, C1) are exactly what is refused
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
/** Whitespace and the zero-width characters (U+200B..U+200D, U+2060, U+FEFF): a businessId of only these shows nothing. */
const INVISIBLE = /[\s\u200b-\u200d\u2060\ufeff]/gu;

/** Lower-case names, in lookup order. */
const NAMES = ['businessid', 'bussinessid'] as const;

function headerValues(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/**
 * Every non-empty businessId the client gave, in lookup order (the first is
 * the one used without a token). `query` has lower-case names; `extra` are
 * more places (an HTTP route's path parameters), checked after the others.
 */
export function givenBusinessIds(
  query: Readonly<Record<string, string>>,
  headers: IncomingHttpHeaders,
  extra: Readonly<Record<string, string>> = {},
): string[] {
  const out: string[] = [];
  for (const name of NAMES) {
    const v = query[name];
    if (v !== undefined && v !== '') out.push(v);
  }
  for (const name of NAMES) for (const v of headerValues(headers[name])) if (v !== '') out.push(v);
  for (const name in extra) {
    const v = extra[name]!;
    if (Object.hasOwn(extra, name) && isBusinessIdName(name) && v !== '') out.push(v);
  }
  return out;
}

/** Is this parameter name one of the businessId spellings? */
export function isBusinessIdName(name: string): boolean {
  const lower = name.toLowerCase();
  return lower === NAMES[0] || lower === NAMES[1];
}

/** What is wrong with a businessId, or undefined when it is good. */
export function businessIdProblem(businessId: string): string | undefined {
  if (businessId.length > MAX_BUSINESS_ID_LENGTH || CONTROL.test(businessId)) {
    return `businessId must be at most ${MAX_BUSINESS_ID_LENGTH} characters without control characters`;
  }
  if (businessId.replace(INVISIBLE, '') === '') return 'businessId must hold visible text, not only whitespace or zero-width characters';
  return undefined;
}
