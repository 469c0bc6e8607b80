/**
 * Route rules: how a contract and its methods become HTTP routes.
 * Pure functions, no I/O; docs/routes.md holds the table of examples that
 * test/routes-table.test.ts runs against them.
 */
import { WeftError } from '../errors.js';

export type HttpVerb = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
export type ParamSource = 'path' | 'query' | 'header' | 'body';

export const HTTP_VERBS: readonly HttpVerb[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];
export const DEFAULT_ROUTE_TEMPLATE = 'api/{appservice}';

const APPSERVICE_SEGMENT = /^\{appservice(?:=([^}]*))?\}$/i;
const PARAM_SEGMENT = /^\{([A-Za-z_$][\w$]*)\}$/;

/** Verb inferred from a method name prefix, checked in this order. */
const VERB_BY_PREFIX: ReadonlyArray<readonly [string, HttpVerb]> = [
  ['get', 'GET'],
  ['query', 'GET'],
  ['search', 'GET'],
  ['create', 'POST'],
  ['add', 'POST'],
  ['update', 'PUT'],
  ['put', 'PUT'],
  ['modify', 'PUT'],
  ['delete', 'DELETE'],
];

/** Prefixes stripped from the path segment, per final verb, longest first. */
const STRIPPED_PREFIXES: Readonly<Record<HttpVerb, readonly string[]>> = {
  GET: ['getBy', 'getFor', 'getFrom', 'get'],
  POST: ['createOrUpdate', 'createOrModify', 'create', 'add'],
  PUT: ['createOrUpdate', 'createOrModify', 'update', 'put', 'modify'],
  PATCH: ['createOrUpdate', 'createOrModify', 'update', 'put', 'modify'],
  DELETE: ['delete'],
};

/** `name` starts with `prefix` at a camel-case boundary (`getUser`, `get`, not `getaway`). */
function hasCamelPrefix(name: string, prefix: string): boolean {
  if (!name.startsWith(prefix)) return false;
  const next = name.charAt(prefix.length);
  return next === '' || (next >= 'A' && next <= 'Z') || (next >= '0' && next <= '9');
}

/**
 * The service segment of a contract: `IWsTestAppService` -> `wstest`.
 * A leading `I` goes only when an upper-case letter follows; a trailing
 * `AppService` only when present. `{appservice=name}` in the template wins.
 */
export function serviceSegment(contractName: string, template: string = DEFAULT_ROUTE_TEMPLATE): string {
  for (const segment of splitTemplate(template)) {
    const m = APPSERVICE_SEGMENT.exec(segment);
    if (m?.[1] !== undefined && m[1] !== '') return m[1].toLowerCase();
  }
  let name = contractName;
  if (name.length > 1 && name[0] === 'I' && name[1]! >= 'A' && name[1]! <= 'Z') name = name.slice(1);
  if (name.endsWith('AppService') && name.length > 'AppService'.length) name = name.slice(0, -'AppService'.length);
  return name.toLowerCase();
}

function splitTemplate(template: string): string[] {
  return template
    .replace(/^~?\/+/, '')
    .split('/')
    .filter((s) => s !== '');
}

/**
 * The service's base path: the template with `{appservice}` replaced.
 * Literal segments are lower-cased; `{param}` segments are kept as they are.
 */
export function basePath(contractName: string, template: string = DEFAULT_ROUTE_TEMPLATE): string {
  const segments = splitTemplate(template);
  if (!segments.some((s) => APPSERVICE_SEGMENT.test(s))) {
    throw new WeftError('InvalidContract', `${contractName}: route template "${template}" has no {appservice} segment`);
  }
  const service = serviceSegment(contractName, template);
  return (
    '/' +
    segments
      .map((s) => {
        if (APPSERVICE_SEGMENT.test(s)) return service;
        if (PARAM_SEGMENT.test(s)) return s;
        if (s.includes('{') || s.includes('}')) {
          throw new WeftError('InvalidContract', `${contractName}: route segment "${s}" is not a literal or a {param}`);
        }
        return s.toLowerCase();
      })
      .join('/')
  );
}

/**
 * The HTTP verb of a method: explicit wins; else from the name prefix;
 * else GET when every parameter is simple, POST otherwise.
 */
export function httpVerb(methodName: string, allParamsSimple: boolean, explicit?: HttpVerb): HttpVerb {
  if (explicit !== undefined) return explicit;
  for (const [prefix, verb] of VERB_BY_PREFIX) {
    if (hasCamelPrefix(methodName, prefix)) return verb;
  }
  return allParamsSimple ? 'GET' : 'POST';
}

/**
 * The path segment a method adds: `Async` suffix and the verb's prefix
 * stripped, lower-cased. Empty means the method maps to the service route.
 */
export function methodSegment(methodName: string, verb: HttpVerb): string {
  let name = methodName;
  if (name.endsWith('Async') && name.length > 'Async'.length) name = name.slice(0, -'Async'.length);
  for (const prefix of STRIPPED_PREFIXES[verb]) {
    if (hasCamelPrefix(name, prefix)) {
      name = name.slice(prefix.length);
      break;
    }
  }
  return name.toLowerCase();
}

/** Names of `{param}` segments in a path template. */
export function pathParamNames(path: string): string[] {
  const names: string[] = [];
  for (const segment of path.split('/')) {
    const m = PARAM_SEGMENT.exec(segment);
    if (m?.[1] !== undefined) names.push(m[1]);
  }
  return names;
}

export interface RouteParamInput {
  name: string;
  simple: boolean;
  from?: ParamSource;
}

export interface RouteInput {
  contractName: string;
  template?: string;
  methodName: string;
  params: readonly RouteParamInput[];
  http?: { method?: HttpVerb; path?: string };
}

export interface RouteResult {
  verb: HttpVerb;
  /** Path template, e.g. `/api/user/{id}`. */
  path: string;
  /** Where each parameter binds, in parameter order. */
  bindings: ParamSource[];
}

/**
 * The whole rule: verb, path and the binding of every parameter.
 * Throws InvalidContract naming the method and parameter when a rule is broken.
 */
export function resolveRoute(input: RouteInput): RouteResult {
  const where = `${input.contractName}.${input.methodName}`;
  const allSimple = input.params.every((p) => p.simple);
  const verb = httpVerb(input.methodName, allSimple, input.http?.method);
  const base = basePath(input.contractName, input.template);

  let path: string;
  const explicitPath = input.http?.path;
  if (explicitPath !== undefined) {
    const rel = explicitPath.replace(/^\/+|\/+$/g, '');
    path = rel === '' ? base : `${base}/${rel}`;
  } else {
    const segment = methodSegment(input.methodName, verb);
    path = segment === '' ? base : `${base}/${segment}`;
    // Parameters declared `from: 'path'` and not in the template are appended, in order.
    const named = new Set(pathParamNames(path));
    for (const p of input.params) {
      if (p.from === 'path' && !named.has(p.name)) path += `/{${p.name}}`;
    }
  }

  const inPath = new Set(pathParamNames(path));
  const paramNames = new Set(input.params.map((p) => p.name));
  for (const name of inPath) {
    if (!paramNames.has(name)) {
      throw new WeftError('InvalidContract', `${where}: route "${path}" names {${name}}, which is not a parameter`);
    }
  }

  let bodyCount = 0;
  const bindings = input.params.map((p): ParamSource => {
    let from: ParamSource;
    if (p.from !== undefined) from = p.from;
    else if (inPath.has(p.name)) from = 'path';
    else from = p.simple ? 'query' : 'body';
    if (from === 'path' && !inPath.has(p.name)) {
      throw new WeftError('InvalidContract', `${where}: parameter "${p.name}" binds to the path but the route "${path}" does not name it`);
    }
    // Otherwise the path value would be matched and silently dropped.
    if (from !== 'path' && inPath.has(p.name)) {
      throw new WeftError('InvalidContract', `${where}: parameter "${p.name}" binds to the ${from} but the route "${path}" names it`);
    }
    if ((from === 'path' || from === 'query' || from === 'header') && !p.simple) {
      throw new WeftError('InvalidContract', `${where}: parameter "${p.name}" is complex and cannot bind to the ${from}`);
    }
    if (from === 'body') {
      bodyCount += 1;
      if (verb === 'GET' || verb === 'DELETE') {
        throw new WeftError('InvalidContract', `${where}: parameter "${p.name}" binds to the body, which ${verb} does not carry`);
      }
    }
    return from;
  });
  if (bodyCount > 1) {
    throw new WeftError('InvalidContract', `${where}: more than one parameter binds to the body`);
  }
  return { verb, path, bindings };
}

/**
 * What makes two routes the same for a gateway: the verb and the path with
 * its literal segments lower-cased and its parameters unnamed
 * (`GET /api/user/{id}` and `GET /API/User/{userId}` are one route).
 */
export function routeKey(verb: HttpVerb, path: string): string {
  const segments = path
    .split('/')
    .filter((s) => s !== '')
    .map((s) => (/^\{.+\}$/.test(s) ? '{}' : s.toLowerCase()));
  return `${verb} /${segments.join('/')}`;
}
