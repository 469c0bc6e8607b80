/**
 * Options declared once. Each option is a TypeBox schema that also carries
 * what the rest of weft needs to know about it (description, unit, default,
 * how to say what a good value is), so that its TypeScript type, its
 * default, its check and its row in docs/options.md come from one place and
 * cannot drift apart.
 *
 * @example
 * const OPTIONS = defineOptions({
 *   timeoutMs: positiveNumber({ unit: 'ms', default: 5000, description: 'Give up after this long.' }),
 *   listen: section({ port: port({ default: 0, description: 'Port to listen on.' }) }),
 * });
 * const resolved = resolveOptions(OPTIONS, { timeoutMs: 100 }, 'createThing');
 * // { timeoutMs: 100, listen: { port: 0 } }, frozen
 */
import {
  Kind,
  OptionalKind,
  Type,
  type Static,
  type TBoolean,
  type TInteger,
  type TNumber,
  type TObject,
  type TOptional,
  type TProperties,
  type TSchema,
  type TString,
  type TUnsafe,
} from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { WeftError, invalidOption } from '../errors.js';

/** Units an option's value is counted in; docs/options.md shows them next to the type. */
export type Unit =
  | 'ms'
  | 'seconds'
  | 'bytes'
  | 'address'
  | 'port'
  | 'instances'
  | 'failures'
  | 'calls'
  | 'links'
  | 'header names'
  | 'per second'
  | 'sessions'
  | 'messages'
  | 'pushes'
  | 'rooms'
  | 'characters';

/**
 * The default of a declared option, under a symbol rather than only the JSON
 * Schema `default` keyword: TypeBox types `default` as `any`, which would
 * erase the literal types `DEFAULTS` is built from.
 */
export const DEFAULT: unique symbol = Symbol('weft.option.default');
/** What an option schema knows beyond JSON Schema (a symbol, so the JSON Schema stays clean). */
const INFO = Symbol('weft.option.info');
/** The cross-field check of a whole options object. */
const REFINE = Symbol('weft.option.refine');

/** What docs and error messages say about one option. */
export interface OptionInfo {
  /** The meaning column of docs/options.md. */
  readonly description: string;
  /** The type column, e.g. `positive integer, bytes`. */
  readonly docType: string;
  /** What a good value is, after "must be" in an error: `a positive integer`. */
  readonly expected: string;
  readonly unit: Unit | undefined;
  /** Added to the default in the docs, e.g. `any free port`; alone when there is no default value. */
  readonly defaultNote: string | undefined;
  /** Checks values TypeBox cannot describe (a logger, a function); such values are passed on as they are, never copied or frozen. */
  readonly is: ((value: unknown) => boolean) | undefined;
  /** Turns a good value into the one used, e.g. lower-cases header names. */
  readonly normalize: ((value: never) => unknown) | undefined;
}

/** What every option declaration may say. */
export interface OptionSpec<T> {
  readonly description: string;
  readonly default?: T;
  /** Must be given (no default, not optional). */
  readonly required?: true;
  readonly defaultNote?: string;
  readonly normalize?: (value: T) => T;
}

export interface CountSpec extends OptionSpec<number> {
  readonly unit?: Unit;
}

export interface CustomSpec extends Omit<OptionSpec<unknown>, 'normalize'> {
  /** Is the value acceptable? A type guard: the option's type is what it guards. */
  readonly is: (value: unknown) => boolean;
  /** The type column of the docs. */
  readonly docType: string;
  /** After "must be" in an error. */
  readonly expected: string;
}

/** The schema a declaration returns: optional unless `required`, and typed with its default when it has one. */
export type Declared<S extends TSchema, Spec> = (Spec extends { readonly required: true } ? S : TOptional<S>) &
  (Spec extends { readonly default: infer D } ? { readonly [DEFAULT]: D } : unknown);

/** A nested options object that is always there once resolved (each of its options has a default or may be absent). */
export type Section<P extends TProperties> = TOptional<TObject<P>> & { readonly [DEFAULT]: Readonly<Record<string, never>> };

/** Present in the resolved options: it has a default or must be given. */
type Present<S> = S extends { readonly [DEFAULT]: unknown } ? true : S extends TOptional<TSchema> ? false : true;
type Maybe<T, IsPresent> = IsPresent extends true ? T : T | undefined;

/** The options a constructor works with: every key there, defaults filled in, nested objects resolved too, all read-only. */
export type Resolved<P extends TProperties> = { readonly [K in keyof P]: ResolvedValue<P[K]> };
type ResolvedValue<S extends TSchema> = S extends TObject<infer Q> ? Maybe<Resolved<Q>, Present<S>> : Maybe<Static<S>, Present<S>>;

/** Options of one constructor: an object schema that refuses unknown keys. */
export type OptionsSchema<P extends TProperties> = TObject<P>;

type Guarded<F> = F extends (value: unknown) => value is infer T ? T : never;

/** Freezes a JSON value weft made (a copy, a default), all the way down. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

function unitSuffix(unit: Unit | undefined): string {
  return unit === undefined ? '' : `, ${unit}`;
}

/** Any declaration's spec, as `declare` reads it. */
interface AnySpec {
  readonly description: string;
  readonly default?: unknown;
  readonly required?: true;
  readonly defaultNote?: string;
  readonly unit?: Unit;
  readonly normalize?: (value: never) => unknown;
}

/**
 * Attaches the info and the default to `schema` and makes it optional unless
 * required. It works on plain TSchema; each helper below states the precise
 * type it returns (hence their `as never`), which is what `Static` and
 * `Resolved` read.
 */
function declare(schema: TSchema, spec: AnySpec, kind: { docType: string; expected: string; is?: (value: unknown) => boolean }): TSchema {
  const info: OptionInfo = {
    description: spec.description,
    docType: spec.required === true ? `${kind.docType} (required)` : kind.docType,
    expected: kind.expected,
    unit: spec.unit,
    defaultNote: spec.defaultNote,
    is: kind.is,
    normalize: spec.normalize,
  };
  const declared: TSchema & { [INFO]?: OptionInfo; [DEFAULT]?: unknown } = { ...schema, [INFO]: info };
  if (spec.default !== undefined) {
    // Shared by every resolution, so it must not be changed by any of them.
    const value = deepFreeze(spec.default);
    declared[DEFAULT] = value;
    declared['default'] = value;
  }
  return spec.required === true ? declared : Type.Optional(declared);
}

/** A number above zero, e.g. a duration. */
export function positiveNumber<const Spec extends CountSpec>(spec: Spec): Declared<TNumber, Spec> {
  const schema = Type.Number({ exclusiveMinimum: 0 });
  return declare(schema, spec, { docType: `positive number${unitSuffix(spec.unit)}`, expected: 'a positive number' }) as never;
}

/** A number zero or above, e.g. a tolerance that may be none. */
export function nonNegativeNumber<const Spec extends CountSpec>(spec: Spec): Declared<TNumber, Spec> {
  const schema = Type.Number({ minimum: 0 });
  return declare(schema, spec, { docType: `number >= 0${unitSuffix(spec.unit)}`, expected: 'a number zero or above' }) as never;
}

/** A whole number above zero, e.g. a size or a count. */
export function positiveInteger<const Spec extends CountSpec>(spec: Spec): Declared<TInteger, Spec> {
  const schema = Type.Integer({ minimum: 1 });
  return declare(schema, spec, { docType: `positive integer${unitSuffix(spec.unit)}`, expected: 'a positive integer' }) as never;
}

/** A TCP port; 0 asks the system for a free one. */
export function port<const Spec extends OptionSpec<number>>(spec: Spec): Declared<TInteger, Spec> {
  const schema = Type.Integer({ minimum: 0, maximum: 65535 });
  return declare(schema, { ...spec, unit: 'port' }, { docType: 'integer 0-65535', expected: 'a port number 0-65535' }) as never;
}

/** A string that must not be empty (a host, a name, a path). */
export function nonEmptyString<const Spec extends OptionSpec<string> & { readonly unit?: Unit }>(spec: Spec): Declared<TString, Spec> {
  return declare(Type.String({ minLength: 1 }), spec, { docType: 'string', expected: 'a non-empty string' }) as never;
}

/** Any string, the empty one included. */
export function anyString<const Spec extends OptionSpec<string>>(spec: Spec): Declared<TString, Spec> {
  return declare(Type.String(), spec, { docType: 'string', expected: 'a string' }) as never;
}

/** true or false. */
export function flag<const Spec extends OptionSpec<boolean>>(spec: Spec): Declared<TBoolean, Spec> {
  return declare(Type.Boolean(), spec, { docType: 'boolean', expected: 'true or false' }) as never;
}

/** An array of strings; typed read-only so callers may pass `as const` arrays. */
export function stringList<const Spec extends OptionSpec<readonly string[]> & { readonly unit?: Unit }>(
  spec: Spec,
): Declared<TUnsafe<readonly string[]>, Spec> {
  const schema = Type.Unsafe<readonly string[]>(Type.Array(Type.String()));
  return declare(schema, spec, { docType: 'string array', expected: 'an array of strings' }) as never;
}

/** A value JSON Schema cannot describe (a logger, a cluster, a function): `is` checks it, and it is passed on as it is. */
export function custom<const Spec extends CustomSpec>(spec: Spec): Declared<TUnsafe<Guarded<Spec['is']>>, Spec> {
  return declare(Type.Unsafe({}), spec, { docType: spec.docType, expected: spec.expected, is: spec.is }) as never;
}

/** A nested options object with a default for each option (or none needed): resolved even when absent. */
export function section<P extends TProperties>(properties: P): Section<P> {
  const schema = Type.Object(properties, { additionalProperties: false });
  const empty = Object.freeze({});
  return Type.Optional({ ...schema, [DEFAULT]: empty, default: empty });
}

/** A nested options object that is absent unless given (its options may be required). */
export function record<P extends TProperties>(
  properties: P,
  spec: { readonly description: string; readonly defaultNote?: string },
): TOptional<TObject<P>> {
  const schema = Type.Object(properties, { additionalProperties: false });
  return declare(schema, spec, { docType: 'object', expected: 'an object' }) as never;
}

/**
 * The options of one constructor. `refine` checks what involves several
 * options (one must be under another); it receives the resolved options and
 * throws `invalidOption(...)` naming the option to change.
 */
export function defineOptions<P extends TProperties>(properties: P, refine?: (options: Resolved<P>) => void): OptionsSchema<P> {
  const schema = Type.Object(properties, { additionalProperties: false });
  return refine === undefined ? schema : Object.assign(schema, { [REFINE]: refine });
}

/** What docs and errors know about an option; undefined for a `section`, which is only its options. */
export function optionInfo(schema: TSchema): OptionInfo | undefined {
  return (schema as { [INFO]?: OptionInfo })[INFO];
}

/** The default of an option, or undefined when it has none. */
export function optionDefault(schema: TSchema): unknown {
  return (schema as { [DEFAULT]?: unknown })[DEFAULT];
}

export function isOptional(schema: TSchema): boolean {
  return (schema as { [OptionalKind]?: unknown })[OptionalKind] === 'Optional';
}

/** A nested options object (`section` or `record`), as opposed to one option. */
export function isGroup(schema: TSchema): schema is TObject {
  return schema[Kind] === 'Object';
}

/** A value as an error message shows it: short, and never throwing. */
function show(value: unknown): string {
  if (typeof value === 'function') return 'a function';
  if (typeof value !== 'object' || value === null) return typeof value === 'string' ? JSON.stringify(value) : String(value);
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    // circular
  }
  if (text === undefined) return Array.isArray(value) ? 'an array' : 'an object';
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const join = (path: string, key: string): string => (path === '' ? key : `${path}.${key}`);

function resolveValue(schema: TSchema, given: unknown, name: string, what: string): unknown {
  const value = given === undefined ? optionDefault(schema) : given;
  if (value === undefined) {
    if (isOptional(schema)) return undefined;
    throw invalidOption(name, `is required: ${optionInfo(schema)?.expected ?? 'a value'}`);
  }
  if (isGroup(schema)) return resolveGroup(schema, value, name, what);
  const info = optionInfo(schema);
  if (info === undefined) throw new WeftError('ServerError', `option ${name} of ${what} is declared without weft's helpers`);
  const good = info.is === undefined ? Value.Check(schema, value) : info.is(value);
  if (!good) throw invalidOption(name, `must be ${info.expected}, got ${show(value)}`);
  // The caller's own objects (logger, cluster, TLS options, functions) stay theirs: not copied, not frozen.
  if (info.is !== undefined) return value;
  // JSON values are copied before freezing, so a caller's array is never frozen under them.
  const own = given === undefined ? value : Value.Clone(value);
  return deepFreeze(info.normalize === undefined ? own : info.normalize(own as never));
}

function resolveGroup(schema: TObject, input: unknown, path: string, what: string): Readonly<Record<string, unknown>> {
  if (!isObject(input)) {
    if (path === '') throw new WeftError('InvalidOption', `${what} takes an options object, got ${show(input)}`);
    throw invalidOption(path, `must be an object, got ${show(input)}`);
  }
  const properties: TProperties = schema.properties;
  // A typo must not pass silently, at any depth.
  for (const key of Object.keys(input)) {
    if (!Object.hasOwn(properties, key)) throw invalidOption(join(path, key), `is not an option of ${path === '' ? what : `${what} ${path}`}`);
  }
  const out: Record<string, unknown> = {};
  for (const [key, option] of Object.entries(properties)) out[key] = resolveValue(option, input[key], join(path, key), what);
  return Object.freeze(out);
}

/**
 * Checks `input` against `schema` and returns the options to use: defaults
 * filled in, values normalized, frozen (nested objects too; a caller's own
 * objects such as a logger are passed on untouched). `undefined` stands for
 * `{}`, and an option given as `undefined` counts as not given. Throws
 * `InvalidOption` naming the option by its path (`websocket.maxMessageBytes`);
 * `what` names the constructor in messages (`createGateway`).
 */
export function resolveOptions<P extends TProperties>(schema: OptionsSchema<P>, input: unknown, what: string): Resolved<P> {
  // The walk reads the schema as any object schema; the declarations make the result a Resolved<P>.
  const resolved = resolveGroup(schema as TObject, input ?? {}, '', what) as Resolved<P>;
  (schema as { [REFINE]?: (options: Resolved<P>) => void })[REFINE]?.(resolved);
  return resolved;
}
