/**
 * Named, typed pushes: a contract's `pushes` declare each push's payload
 * schema, and a TypedPush sends them through a SessionManager (or anything
 * with its three push methods). A payload is checked against its schema and
 * encoded to JSON once, `{"push":<name>,"data":<payload>}`, before it is
 * sent; a bad one rejects with BadRequest naming the push and the field, and
 * nothing is sent. `weft/client` hands a named push to `client.on(name)`.
 */
import { WeftError } from '../errors.js';
import type { AnyContract, PushPayload, TSchema } from '../contract/contract.js';
import { ValueValidator } from '../contract/validate.js';
import { namedPushText } from '../protocol/weft-v1.js';
import type { PushMessage } from '../push/push-client.js';
import type { PushOptions } from './session-manager.js';

/** The names of the pushes a contract declares. */
export type PushName<C extends AnyContract> = keyof C['pushes'] & string;

/** What a TypedPush sends through: a SessionManager (a service's, or `createClient().sessions(contract)`). */
export interface PushTarget {
  sendTo(message: PushMessage, sessionId: string): Promise<boolean>;
  pushToBusiness(businessId: string, message: PushMessage, options?: PushOptions): Promise<number>;
  broadcast(message: PushMessage): Promise<number>;
  pushToRoom(room: string, message: PushMessage, options?: PushOptions): Promise<number>;
}

/** Each contract's compiled payload checks, by push name: compiled once, on first use. */
const validators = new WeakMap<AnyContract, Map<string, ValueValidator>>();

function validatorOf(contract: AnyContract, name: string): ValueValidator {
  let byName = validators.get(contract);
  if (byName === undefined) validators.set(contract, (byName = new Map<string, ValueValidator>()));
  let validator = byName.get(name);
  if (validator === undefined) {
    const pushes = contract.pushes as Record<string, TSchema>;
    if (typeof name !== 'string' || !Object.hasOwn(pushes, name)) {
      throw new WeftError('BadRequest', `${contract.name} declares no push ${JSON.stringify(name)}`);
    }
    validator = new ValueValidator(pushes[name]!, 'data');
    byName.set(name, validator);
  }
  return validator;
}

function rejected(error: unknown): Promise<never> {
  return Promise.reject(error instanceof Error ? error : new WeftError('BadRequest', String(error)));
}

export class TypedPush<C extends AnyContract> {
  readonly #contract: C;
  readonly #target: () => PushTarget;

  /** @internal use `typedPush` or a service's `this.pushes` */
  constructor(contract: C, target: () => PushTarget) {
    this.#contract = contract;
    this.#target = target;
  }

  /**
   * The text of a named push, checked against its schema and encoded once:
   * send it with any raw push (`session.send`, a room push). Throws
   * BadRequest naming the push and each bad field.
   *
   * @example
   * const text = this.pushes.encode('orderShipped', { orderId: 'A-1', at: Date.now() });
   * await this.sessionManager.sendTo(text, sessionId);
   */
  encode<K extends PushName<C>>(name: K, payload: NoInfer<PushPayload<C, K>>): string {
    const errors = validatorOf(this.#contract, name).validate(payload);
    if (errors !== undefined) {
      const fields = errors.map((e) => `${e.memberNames.join(', ')}: ${e.errorMessage}`).join('; ');
      throw new WeftError('BadRequest', `push ${name} of ${this.#contract.name} does not match its schema: ${fields}`, { validErrors: errors });
    }
    let json: string | undefined;
    try {
      json = JSON.stringify(payload);
    } catch (e) {
      throw new WeftError('BadRequest', `push ${name} of ${this.#contract.name} is not JSON: ${(e as Error).message}`);
    }
    // A payload JSON has no form for (undefined, a function), where the schema let it through, goes as null.
    return namedPushText(name, json ?? 'null');
  }

  /**
   * Pushes to every session of a businessId, on every gateway (as
   * `sessionManager.pushToBusiness`, history and options included).
   * Resolves with how many sessions it reached.
   *
   * @example
   * const reached = await this.pushes.toBusiness('100', 'orderShipped', { orderId: 'A-1', at: Date.now() });
   */
  toBusiness<K extends PushName<C>>(businessId: string, name: K, payload: NoInfer<PushPayload<C, K>>, options?: PushOptions): Promise<number> {
    try {
      return this.#target().pushToBusiness(businessId, this.encode(name, payload), options);
    } catch (e) {
      return rejected(e);
    }
  }

  /**
   * Pushes to one session, wherever it is. Resolves true if it was delivered.
   *
   * @example
   * await this.pushes.toSession(sessionId, 'orderShipped', { orderId: 'A-1', at: Date.now() });
   */
  toSession<K extends PushName<C>>(sessionId: string, name: K, payload: NoInfer<PushPayload<C, K>>): Promise<boolean> {
    try {
      return this.#target().sendTo(this.encode(name, payload), sessionId);
    } catch (e) {
      return rejected(e);
    }
  }

  /**
   * Pushes to every member of a room, on every gateway (as
   * `sessionManager.pushToRoom`, history and options included). Resolves
   * with how many sessions it reached.
   *
   * @example
   * const reached = await this.pushes.toRoom('lobby', 'orderShipped', { orderId: 'A-1', at: Date.now() });
   */
  toRoom<K extends PushName<C>>(room: string, name: K, payload: NoInfer<PushPayload<C, K>>, options?: PushOptions): Promise<number> {
    try {
      return this.#target().pushToRoom(room, this.encode(name, payload), options);
    } catch (e) {
      return rejected(e);
    }
  }

  /**
   * Pushes to every session of the service.
   *
   * @example
   * await this.pushes.broadcast('orderShipped', { orderId: 'A-1', at: Date.now() });
   */
  broadcast<K extends PushName<C>>(name: K, payload: NoInfer<PushPayload<C, K>>): Promise<number> {
    try {
      return this.#target().broadcast(this.encode(name, payload));
    } catch (e) {
      return rejected(e);
    }
  }
}

/**
 * The typed pushes of a contract through a SessionManager: what a service's
 * `this.pushes` is, for a process that only pushes (`createClient`).
 *
 * @example
 * const client = await createClient({ cluster }).start();
 * const pushes = typedPush(IShopAppService, await client.sessions(IShopAppService));
 * await pushes.toBusiness('100', 'orderShipped', { orderId: 'A-1', at: Date.now() });
 */
export function typedPush<C extends AnyContract>(contract: C, sessions: PushTarget): TypedPush<C> {
  if (typeof sessions?.pushToBusiness !== 'function') throw new TypeError('typedPush needs a SessionManager (client.sessions(contract))');
  return new TypedPush(contract, () => sessions);
}
