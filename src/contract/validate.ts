/**
 * Argument validation on the serving side, compiled once per method.
 */
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { OptionalKind, type TSchema } from '@sinclair/typebox';
import type { ValidError } from '../errors.js';
import type { MethodDef } from './contract.js';

/** At most this many errors are listed for one parameter, and for one call. */
export const MAX_ERRORS_PER_PARAM = 20;
export const MAX_ERRORS = 100;

interface ParamCheck {
  name: string;
  optional: boolean;
  check: TypeCheck<TSchema>;
}

/** Checks positional arguments against a method's parameters. */
export class ArgsValidator {
  readonly #params: ParamCheck[];

  constructor(def: MethodDef) {
    this.#params = def.params.map((p) => ({
      name: p.name,
      optional: (p.schema as { [OptionalKind]?: unknown })[OptionalKind] === 'Optional',
      check: TypeCompiler.Compile(p.schema),
    }));
  }

  /** Every problem with `args`, or undefined when they are valid. */
  validate(args: readonly unknown[]): ValidError[] | undefined {
    let errors: ValidError[] | undefined;
    const push = (e: ValidError): void => {
      (errors ??= []).push(e);
    };
    const params = this.#params;
    if (args.length > params.length) {
      push({ memberNames: [], errorMessage: `expected at most ${params.length} arguments, got ${args.length}` });
    }
    for (let i = 0; i < params.length; i++) {
      const p = params[i]!;
      const value = args[i];
      if (value === undefined) {
        if (!p.optional) push({ memberNames: [p.name], errorMessage: `${p.name} is required` });
        continue;
      }
      if (p.check.Check(value)) continue;
      let forParam = 0;
      for (const error of p.check.Errors(value)) {
        // A huge bad argument must not make a huge answer: list a few, say there are more.
        if (forParam === MAX_ERRORS_PER_PARAM || (errors?.length ?? 0) >= MAX_ERRORS) {
          push({ memberNames: [p.name], errorMessage: 'more errors not listed' });
          break;
        }
        const member = error.path === '' ? p.name : `${p.name}${error.path.replaceAll('/', '.')}`;
        push({ memberNames: [member], errorMessage: error.message });
        forParam += 1;
      }
      if ((errors?.length ?? 0) > MAX_ERRORS) break;
    }
    return errors;
  }
}

/** Where an error of a value's schema is: `name` for the value itself, else its path with dots (`items.0.sku`). */
function memberOf(name: string, path: string): string {
  return path === '' ? name : path.slice(1).replaceAll('/', '.');
}

/**
 * Checks one value against one schema (a push's payload, a client message's
 * params), compiled once. Errors name the field at fault by its path in the
 * value, or `name` for the value as a whole.
 */
export class ValueValidator {
  readonly #check: TypeCheck<TSchema>;
  readonly #name: string;

  constructor(schema: TSchema, name: string) {
    this.#check = TypeCompiler.Compile(schema);
    this.#name = name;
  }

  /** Every problem with `value` (at most MAX_ERRORS), or undefined when it is valid. */
  validate(value: unknown): ValidError[] | undefined {
    if (this.#check.Check(value)) return undefined;
    const errors: ValidError[] = [];
    for (const error of this.#check.Errors(value)) {
      if (errors.length === MAX_ERRORS_PER_PARAM) {
        errors.push({ memberNames: [this.#name], errorMessage: 'more errors not listed' });
        break;
      }
      errors.push({ memberNames: [memberOf(this.#name, error.path)], errorMessage: error.message });
    }
    return errors;
  }
}
