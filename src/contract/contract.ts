/**
 * Service contracts as runtime values. TypeScript interfaces vanish at run
 * time, so a contract is an object: name, route template and methods with
 * named, typed parameters (TypeBox, so JSON Schema) and a return type. From it
 * come the HTTP routes, binding, validation, the typed proxy and OpenAPI.
 */
import { Type, OptionalKind, type Static, type TSchema, type TOptional } from '@sinclair/typebox';
import { WeftError } from '../errors.js';
import { DEFAULT_ROUTE_TEMPLATE, HTTP_VERBS, basePath, resolveRoute, serviceSegment, type HttpVerb, type ParamSource } from './routes.js';

export interface ParamDef<TName extends string = string, TType extends TSchema = TSchema> {
  readonly name: TName;
  readonly schema: TType;
  readonly from?: ParamSource;
  readonly description?: string;
}

export interface ParamOptions {
  /** Where the gateway binds it from; by default path if the route names it, query if simple, else body. */
  from?: ParamSource;
  description?: string;
}

/**
 * A named, typed parameter. Wrap the schema in `Type.Optional` to make it optional
 * (only trailing parameters may be optional).
 *
 * @example
 * param('businessId', Type.String({ minLength: 1 }))
 */
export function param<const TName extends string, TType extends TSchema>(
  name: TName,
  schema: TType,
  options: ParamOptions = {},
): ParamDef<TName, TType> {
  const def: { name: TName; schema: TType; from?: ParamSource; description?: string } = { name, schema };
  if (options.from !== undefined) def.from = options.from;
  if (options.description !== undefined) def.description = options.description;
  return def;
}

/** How the RPC client picks an instance for a call of this method. */
export type SelectStrategy = 'round-robin' | 'random' | { hashBy: string };

export interface MethodDef<TParams extends readonly ParamDef[] = readonly ParamDef[], TReturns extends TSchema = TSchema> {
  readonly params: TParams;
  /** Return type; omitted means the method returns nothing. */
  readonly returns?: TReturns;
  /** Explicit verb and path (relative to the service route; may name `{param}`s). */
  readonly http?: { readonly method?: HttpVerb; readonly path?: string };
  /** Call timeout for this method; the client default (5 s) otherwise. */
  readonly timeoutMs?: number;
  /** Instance choice; round-robin by default. `{ hashBy: 'businessId' }` is consistent hashing on that parameter. */
  readonly select?: SelectStrategy;
  /**
   * May a call that was in flight on an instance that died be sent again to
   * another instance? Default: true for GET methods, false for the others,
   * which then fail with OutcomeUnknown (they may have run) instead of
   * running twice. Calls that never reached an instance are always failed over.
   */
  readonly idempotent?: boolean;
  readonly description?: string;
}

export type MethodMap = Record<string, MethodDef>;

export interface ContractSpec<TMethods extends MethodMap> {
  /** Interface-style name, e.g. `IWsTestAppService`; gives the service segment `wstest`. */
  readonly name: string;
  /** Route template; default `api/{appservice}`. */
  readonly route?: string;
  readonly description?: string;
  readonly methods: TMethods;
}

type ArgOf<P> = P extends ParamDef<string, infer S> ? Static<S> : never;

/** The positional argument tuple of a parameter list; `Type.Optional` parameters become optional. */
export type ArgsOf<P extends readonly ParamDef[]> = P extends readonly [infer Head, ...infer Tail extends readonly ParamDef[]]
  ? Head extends ParamDef<string, TOptional<TSchema>>
    ? [arg?: ArgOf<Head>, ...ArgsOf<Tail>]
    : [ArgOf<Head>, ...ArgsOf<Tail>]
  : P extends readonly []
    ? []
    : ArgOf<P[number]>[];

/** What a method resolves to. */
export type ReturnOf<M extends MethodDef> = M['returns'] extends TSchema ? Static<M['returns']> : void;

/** The shape an implementation of a contract must have. */
export type Implementation<C extends AnyContract> = {
  [K in keyof C['methods']]: (...args: ArgsOf<C['methods'][K]['params']>) => ReturnOf<C['methods'][K]> | Promise<ReturnOf<C['methods'][K]>>;
};

/** The typed RPC proxy of a contract: every method returns a promise. */
export type Proxy<C extends AnyContract> = {
  readonly [K in keyof C['methods']]: (...args: ArgsOf<C['methods'][K]['params']>) => Promise<ReturnOf<C['methods'][K]>>;
};

/** JSON form of one parameter, carried in the registry. */
export interface ParamDescriptor {
  name: string;
  from: ParamSource;
  required: boolean;
  simple: boolean;
  schema: unknown;
  description?: string;
}

/** JSON form of one method, carried in the registry so a gateway can route without the code. */
export interface MethodDescriptor {
  name: string;
  verb: HttpVerb;
  path: string;
  params: ParamDescriptor[];
  returns: unknown;
  timeoutMs?: number;
  select?: SelectStrategy;
  idempotent: boolean;
  description?: string;
}

/** JSON form of a contract. */
export interface ContractDescriptor {
  name: string;
  segment: string;
  basePath: string;
  description?: string;
  methods: MethodDescriptor[];
}

export interface Contract<TMethods extends MethodMap = MethodMap> {
  readonly name: string;
  readonly route: string;
  /** `/api/wstest`: the route and WebSocket path of the service. */
  readonly basePath: string;
  readonly methods: TMethods;
  readonly descriptor: ContractDescriptor;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyContract = Contract<any>;

const SIMPLE_TYPES = new Set(['string', 'number', 'integer', 'boolean', 'null']);

/**
 * A schema binds to a query string or header when it is a scalar, a literal, or a union of them.
 *
 * @example
 * isSimpleSchema(Type.Integer()); // true: a parameter of this type comes from ?page=2
 * isSimpleSchema(Type.Object({ name: Type.String() })); // false: it comes in the body
 */
export function isSimpleSchema(schema: unknown): boolean {
  if (typeof schema !== 'object' || schema === null) return false;
  const s = schema as { type?: unknown; anyOf?: unknown; const?: unknown; enum?: unknown };
  if (typeof s.type === 'string') return SIMPLE_TYPES.has(s.type);
  if (Array.isArray(s.type)) return s.type.every((t) => typeof t === 'string' && SIMPLE_TYPES.has(t));
  if (Array.isArray(s.anyOf)) return s.anyOf.every(isSimpleSchema);
  if (s.const !== undefined) return ['string', 'number', 'boolean'].includes(typeof s.const);
  if (Array.isArray(s.enum)) return s.enum.every((v) => ['string', 'number', 'boolean'].includes(typeof v));
  return false;
}

function isOptionalSchema(schema: TSchema): boolean {
  return (schema as { [OptionalKind]?: unknown })[OptionalKind] === 'Optional';
}

/** Plain JSON copy of a schema (drops TypeBox's symbol keys). */
function jsonSchema(schema: TSchema | undefined): unknown {
  return schema === undefined ? { type: 'null' } : JSON.parse(JSON.stringify(schema));
}

const IDENT = /^[A-Za-z_$][\w$]*$/;

/** Array.isArray that keeps a readonly array's element type (Array.isArray itself narrows it to any[]). */
function isArray(value: unknown): value is readonly unknown[] {
  return Array.isArray(value);
}

/**
 * Defines a service contract.
 *
 * @example
 * export const IGreeterAppService = defineContract({
 *   name: 'IGreeterAppService',
 *   methods: {
 *     greet: { params: [param('name', Type.String())], returns: Type.String() },
 *   },
 * });
 * // GET /api/greeter/greet?name=ann
 */
export function defineContract<const TMethods extends MethodMap>(spec: ContractSpec<TMethods>): Contract<TMethods> {
  if (typeof spec.name !== 'string' || !IDENT.test(spec.name)) {
    throw new WeftError('InvalidContract', `contract name "${String(spec.name)}" is not an identifier`);
  }
  const route = spec.route ?? DEFAULT_ROUTE_TEMPLATE;
  const segment = serviceSegment(spec.name, route);
  if (segment === '') throw new WeftError('InvalidContract', `${spec.name}: the service segment is empty`);
  const base = basePath(spec.name, route);
  const methods: MethodDescriptor[] = [];
  const seenRoutes = new Map<string, string>();

  for (const [methodName, def] of Object.entries(spec.methods)) {
    const where = `${spec.name}.${methodName}`;
    if (!IDENT.test(methodName)) throw new WeftError('InvalidContract', `${where}: method name is not an identifier`);
    if (!isArray(def.params)) throw new WeftError('InvalidContract', `${where}: params must be an array of param(...)`);
    if (def.http?.method !== undefined && !HTTP_VERBS.includes(def.http.method)) {
      throw new WeftError('InvalidContract', `${where}: unknown HTTP verb "${String(def.http.method)}"`);
    }
    if (def.timeoutMs !== undefined && !(Number.isFinite(def.timeoutMs) && def.timeoutMs > 0)) {
      throw new WeftError('InvalidContract', `${where}: timeoutMs must be a positive number`);
    }
    const names = new Set<string>();
    let sawOptional = false;
    const paramInputs = def.params.map((p, i) => {
      if (typeof p?.name !== 'string' || !IDENT.test(p.name)) {
        throw new WeftError('InvalidContract', `${where}: parameter ${i} has no valid name`);
      }
      if (names.has(p.name)) throw new WeftError('InvalidContract', `${where}: parameter "${p.name}" is declared twice`);
      names.add(p.name);
      const optional = isOptionalSchema(p.schema);
      if (sawOptional && !optional) {
        throw new WeftError('InvalidContract', `${where}: required parameter "${p.name}" follows an optional one`);
      }
      sawOptional ||= optional;
      const input: { name: string; simple: boolean; from?: ParamSource } = { name: p.name, simple: isSimpleSchema(p.schema) };
      if (p.from !== undefined) input.from = p.from;
      return input;
    });
    if (typeof def.select === 'object' && !names.has(def.select.hashBy)) {
      throw new WeftError('InvalidContract', `${where}: select.hashBy "${def.select.hashBy}" is not a parameter`);
    }
    const routeInput: Parameters<typeof resolveRoute>[0] = {
      contractName: spec.name,
      template: route,
      methodName,
      params: paramInputs,
    };
    if (def.http !== undefined) {
      const http: { method?: HttpVerb; path?: string } = {};
      if (def.http.method !== undefined) http.method = def.http.method;
      if (def.http.path !== undefined) http.path = def.http.path;
      routeInput.http = http;
    }
    const resolved = resolveRoute(routeInput);
    const key = `${resolved.verb} ${resolved.path.replace(/\{[^}]*\}/g, '{}')}`;
    const clash = seenRoutes.get(key);
    if (clash !== undefined) {
      throw new WeftError('InvalidContract', `${where}: route ${resolved.verb} ${resolved.path} is already taken by ${clash}`);
    }
    seenRoutes.set(key, methodName);

    const descriptor: MethodDescriptor = {
      name: methodName,
      verb: resolved.verb,
      path: resolved.path,
      params: def.params.map((p, i) => {
        const pd: ParamDescriptor = {
          name: p.name,
          from: resolved.bindings[i]!,
          required: !isOptionalSchema(p.schema),
          simple: paramInputs[i]!.simple,
          schema: jsonSchema(p.schema),
        };
        if (p.description !== undefined) pd.description = p.description;
        return pd;
      }),
      returns: jsonSchema(def.returns),
      // Only reads may run twice unless the contract says so.
      idempotent: def.idempotent ?? resolved.verb === 'GET',
    };
    if (def.timeoutMs !== undefined) descriptor.timeoutMs = def.timeoutMs;
    if (def.select !== undefined) descriptor.select = def.select;
    if (def.description !== undefined) descriptor.description = def.description;
    methods.push(descriptor);
  }

  const descriptor: ContractDescriptor = { name: spec.name, segment, basePath: base, methods };
  if (spec.description !== undefined) descriptor.description = spec.description;
  return Object.freeze({ name: spec.name, route, basePath: base, methods: spec.methods, descriptor });
}

export { Type };
export type { Static, TSchema };
