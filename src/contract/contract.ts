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

/**
 * The pushes a WebSocket service sends, by name: the payload's schema each
 * (its `description` option describes the push in AsyncAPI).
 */
export type PushMap = Record<string, TSchema>;

/** A message a `weft/client` may send to a WebSocket service, and the reply it awaits. */
export interface MessageDef<TParams extends TSchema = TSchema, TReturns extends TSchema = TSchema> {
  /** The schema of the message's params; omitted: it takes none. */
  readonly params?: TParams;
  /** The schema of the handler's return value, the reply; omitted: the reply is null. */
  readonly returns?: TReturns;
  readonly description?: string;
}

export type MessageMap = Record<string, MessageDef>;

/** What a contract without pushes or messages declares of them. */
export type NoneDeclared = Record<never, never>;

export interface ContractSpec<TMethods extends MethodMap, TPushes extends PushMap = NoneDeclared, TMessages extends MessageMap = NoneDeclared> {
  /** Interface-style name, e.g. `IWsTestAppService`; gives the service segment `wstest`. */
  readonly name: string;
  /** Route template; default `api/{appservice}`. */
  readonly route?: string;
  readonly description?: string;
  readonly methods: TMethods;
  /** WebSocket services: the pushes the service sends, validated when sent (`this.pushes`). */
  readonly pushes?: TPushes;
  /** WebSocket services: the messages a `weft/client` may send (`client.call`), each run by the service's method of that name. */
  readonly messages?: TMessages;
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

/** The methods an implementation of a contract must have. */
type MethodsOf<C extends AnyContract> = {
  [K in keyof C['methods']]: (...args: ArgsOf<C['methods'][K]['params']>) => ReturnOf<C['methods'][K]> | Promise<ReturnOf<C['methods'][K]>>;
};

/** The shape an implementation of a contract must have: its methods, and a handler for each message it declares. */
export type Implementation<C extends AnyContract> = [keyof C['messages']] extends [never] ? MethodsOf<C> : MethodsOf<C> & MessageHandlers<C>;

/** The typed RPC proxy of a contract: every method returns a promise. */
export type Proxy<C extends AnyContract> = {
  readonly [K in keyof C['methods']]: (...args: ArgsOf<C['methods'][K]['params']>) => Promise<ReturnOf<C['methods'][K]>>;
};

/**
 * The payload type of push `K` of a contract. (A TypeBox schema's `static`
 * is its Static type; read directly, it stays cheap for the compiler while K is being inferred.)
 */
export type PushPayload<C extends AnyContract, K extends keyof C['pushes']> = C['pushes'][K]['static'];

/** The params type of a message (undefined when it declares none). */
export type MessageParams<M extends MessageDef> = M['params'] extends TSchema ? Static<M['params']> : undefined;

/** What a message's handler returns, the reply (void when it declares no `returns`). */
export type MessageReturn<M extends MessageDef> = M['returns'] extends TSchema ? Static<M['returns']> : void;

/**
 * What a message handler is told of the session that sent the message: on a
 * host it is the whole `WsSession` (declare the parameter as that).
 */
export interface MessageSession {
  readonly id: string;
  readonly businessId: string;
}

// A method signature, so a handler declared with the wider WsSession (the websocket layer's) is accepted.
type MessageHandler<P, R> = { handle(params: P, session: MessageSession): R | Promise<R> }['handle'];

/** The handlers a WebSocket service implements for its contract's messages: a method named like each message. */
export type MessageHandlers<C extends AnyContract> = {
  [K in keyof C['messages'] & string]: MessageHandler<MessageParams<C['messages'][K]>, MessageReturn<C['messages'][K]>>;
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

/** JSON form of one push: its name and the JSON Schema of its payload. */
export interface PushDescriptor {
  name: string;
  schema: unknown;
  description?: string;
}

/** JSON form of one client message: its params and reply schemas. */
export interface ClientMessageDescriptor {
  name: string;
  params: unknown;
  returns: unknown;
  description?: string;
}

/** JSON form of a contract. `pushes` and `messages` are absent when it declares none. */
export interface ContractDescriptor {
  name: string;
  segment: string;
  basePath: string;
  description?: string;
  methods: MethodDescriptor[];
  pushes?: PushDescriptor[];
  messages?: ClientMessageDescriptor[];
}

export interface Contract<TMethods extends MethodMap = MethodMap, TPushes extends PushMap = PushMap, TMessages extends MessageMap = MessageMap> {
  readonly name: string;
  readonly route: string;
  /** `/api/wstest`: the route and WebSocket path of the service. */
  readonly basePath: string;
  readonly methods: TMethods;
  /** The pushes it declares (empty when none). */
  readonly pushes: TPushes;
  /** The client messages it declares (empty when none). */
  readonly messages: TMessages;
  readonly descriptor: ContractDescriptor;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyContract = Contract<any, any, any>;

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
export function defineContract<
  const TMethods extends MethodMap,
  const TPushes extends PushMap = NoneDeclared,
  const TMessages extends MessageMap = NoneDeclared,
>(spec: ContractSpec<TMethods, TPushes, TMessages>): Contract<TMethods, TPushes, TMessages> {
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
  const pushes = pushDescriptors(spec.name, spec.pushes);
  if (pushes.length > 0) descriptor.pushes = pushes;
  const messages = messageDescriptors(spec.name, spec.messages, spec.methods);
  if (messages.length > 0) descriptor.messages = messages;
  return Object.freeze({
    name: spec.name,
    route,
    basePath: base,
    methods: spec.methods,
    pushes: Object.freeze({ ...(spec.pushes ?? {}) }) as TPushes,
    messages: Object.freeze({ ...(spec.messages ?? {}) }) as TMessages,
    descriptor,
  });
}

/**
 * Names a message may not take: a handler is the service's method of the
 * message's name, so it must not be a hook, a member of WsAppServiceBase or
 * of every object (`toString` would always be "found").
 */
const RESERVED_MESSAGE_NAMES = new Set([
  'onOpen',
  'onMessage',
  'onClose',
  'onError',
  'sessionManager',
  'businessSessionIds',
  'pushes',
  ...Object.getOwnPropertyNames(Object.prototype),
]);

function isSchema(value: unknown): value is TSchema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function plainEntries(where: string, part: string, value: unknown): [string, unknown][] {
  if (value === undefined) return [];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new WeftError('InvalidContract', `${where}: ${part} must be an object of named entries`);
  }
  return Object.entries(value);
}

function pushDescriptors(contractName: string, pushes: PushMap | undefined): PushDescriptor[] {
  return plainEntries(contractName, 'pushes', pushes).map(([name, schema]) => {
    const where = `${contractName} push ${name}`;
    if (!IDENT.test(name)) throw new WeftError('InvalidContract', `${where}: the name is not an identifier`);
    if (!isSchema(schema)) throw new WeftError('InvalidContract', `${where}: the payload must be a schema (Type.Object(...))`);
    const d: PushDescriptor = { name, schema: jsonSchema(schema) };
    const description = (schema as { description?: unknown }).description;
    if (typeof description === 'string') d.description = description;
    return d;
  });
}

function messageDescriptors(contractName: string, messages: MessageMap | undefined, methods: MethodMap): ClientMessageDescriptor[] {
  return plainEntries(contractName, 'messages', messages).map(([name, value]) => {
    const where = `${contractName} message ${name}`;
    if (!IDENT.test(name)) throw new WeftError('InvalidContract', `${where}: the name is not an identifier`);
    if (RESERVED_MESSAGE_NAMES.has(name)) {
      throw new WeftError('InvalidContract', `${where}: the name is taken (its handler would be the service's own ${name})`);
    }
    if (Object.hasOwn(methods, name)) {
      throw new WeftError('InvalidContract', `${where}: a method has the same name (the handler of a message is the service's method of its name)`);
    }
    if (typeof value !== 'object' || value === null) throw new WeftError('InvalidContract', `${where}: must be { params?, returns? }`);
    const def = value as MessageDef;
    if (def.params !== undefined && !isSchema(def.params)) throw new WeftError('InvalidContract', `${where}: params must be a schema`);
    if (def.returns !== undefined && !isSchema(def.returns)) throw new WeftError('InvalidContract', `${where}: returns must be a schema`);
    const d: ClientMessageDescriptor = { name, params: jsonSchema(def.params), returns: jsonSchema(def.returns) };
    if (def.description !== undefined) d.description = def.description;
    return d;
  });
}

export { Type };
export type { Static, TSchema };
