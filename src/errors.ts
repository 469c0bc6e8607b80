/**
 * The one error catalogue of weft.
 *
 * Every error that crosses a process boundary has a stable string `code`, a
 * numeric `status` (kept from Silky where Silky has one), the HTTP status the
 * gateway answers with, and whether a caller may retry it on another instance.
 * Identify errors with {@link isWeftError}, never by `instanceof`: two copies
 * of this package in one tree would break `instanceof`.
 *
 * What reaches a client: only a real weft error keeps its code and message,
 * that is an instance of `WeftError` or of a subclass (`BusinessException`,
 * `UserFriendlyException`, `ValidationException`, your own), from this copy
 * of weft or another. Anything else thrown, even an object whose `code`
 * happens to be a catalogue name (an SDK's `NotFound`, a driver's
 * `Unauthorized`), becomes a `ServerError` with a generic message; what it
 * said goes to the log only. To expose such an error, wrap it on purpose:
 * `throw new WeftError('NotFound', 'no such invoice', { cause: e })`.
 *
 * @module
 */

export interface ErrorSpec {
  /** Numeric status in the wrapper body; Silky's value where it has one. */
  readonly status: number;
  /** HTTP status the gateway answers with. */
  readonly httpStatus: number;
  /** May an RPC client try the call again on another instance? */
  readonly retryable: boolean;
  /** One line for docs/errors.md. */
  readonly description: string;
}

export const ERRORS = {
  BusinessError: {
    status: 1000,
    httpStatus: 400,
    retryable: false,
    description: 'A service refused the request for a business reason (BusinessException).',
  },
  ValidateError: {
    status: 1001,
    httpStatus: 400,
    retryable: false,
    description: 'Arguments did not match the contract; `validErrors` names each bad field.',
  },
  UserFriendly: {
    status: 1002,
    httpStatus: 400,
    retryable: false,
    description: 'A message meant to be shown to the end user as it is (UserFriendlyException).',
  },
  NotImplemented: {
    status: 1003,
    httpStatus: 501,
    retryable: false,
    description: 'The service declares the method but its implementation does not provide it.',
  },
  BadRequest: {
    status: 400,
    httpStatus: 400,
    retryable: false,
    description: 'The HTTP request could not be read: malformed JSON, a parameter of the wrong shape, a missing businessId on a WebSocket handshake.',
  },
  UpgradeRequired: {
    status: 426,
    httpStatus: 426,
    retryable: false,
    description: 'A plain HTTP request on a WebSocket path; the answer names the ws:// URL to connect to.',
  },
  Unauthenticated: {
    status: 401,
    httpStatus: 401,
    retryable: false,
    description: 'No credentials, or credentials that could not be verified.',
  },
  Unauthorized: {
    status: 403,
    httpStatus: 403,
    retryable: false,
    description: 'Valid credentials that do not allow this request.',
  },
  NotFound: {
    status: 404,
    httpStatus: 404,
    retryable: false,
    description: 'No route, WebSocket service or service method matches the request.',
  },
  PayloadTooLarge: {
    status: 413,
    httpStatus: 413,
    retryable: false,
    description: 'The request body is over the gateway limit (`maxBodyBytes`).',
  },
  UnsupportedMediaType: {
    status: 415,
    httpStatus: 415,
    retryable: false,
    description: 'A request body sent without a JSON content type (`application/json` or `*/*+json`, UTF-8).',
  },
  TooManyRequests: {
    status: 429,
    httpStatus: 429,
    retryable: false,
    description:
      'Over a gateway limit: WebSocket handshakes per address per second, sessions per address or per businessId; `Retry-After` says when to come back.',
  },
  ServiceUnavailable: {
    status: 503,
    httpStatus: 503,
    retryable: true,
    description: 'No live instance serves the service, or every instance failed at the transport level.',
  },
  Draining: {
    status: 503,
    httpStatus: 503,
    retryable: true,
    description: 'The node is shutting down and takes no new work; another instance may.',
  },
  Overloaded: {
    status: 515,
    httpStatus: 503,
    retryable: true,
    description: 'The host is at its concurrency limit (`maxConcurrentCalls`).',
  },
  CircuitOpen: {
    status: 406,
    httpStatus: 503,
    retryable: true,
    description: 'Every instance of the service has an open circuit breaker after repeated failures.',
  },
  CommunicationError: {
    status: 506,
    httpStatus: 503,
    retryable: true,
    description: 'The link to the instance failed before an answer came back.',
  },
  OutcomeUnknown: {
    status: 524,
    httpStatus: 502,
    retryable: false,
    description:
      'The link to the instance failed while a call that may not run twice (not idempotent: by default any method that is not GET) was in flight; it may or may not have run.',
  },
  Timeout: {
    status: 519,
    httpStatus: 504,
    retryable: false,
    description: 'No answer within the call timeout (default 5 s).',
  },
  LinkUnauthenticated: {
    status: 517,
    httpStatus: 500,
    retryable: false,
    description: 'A node link was refused: the peer does not hold the cluster secret or speaks another protocol version.',
  },
  ProtocolError: {
    status: 521,
    httpStatus: 500,
    retryable: false,
    description: 'A frame between nodes could not be decoded, or was over `maxFrameBytes`; the link is closed.',
  },
  InvalidOption: {
    status: 522,
    httpStatus: 500,
    retryable: false,
    description: 'An option given to a weft constructor is invalid; the message names the option.',
  },
  InvalidContract: {
    status: 523,
    httpStatus: 500,
    retryable: false,
    description: 'A contract breaks a route or binding rule; the message names the method and parameter.',
  },
  ServerError: {
    status: 520,
    httpStatus: 500,
    retryable: false,
    description: 'Anything unexpected. The body carries a generic message, never a stack.',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** One entry of `validErrors`: the field (or fields) at fault and why. */
export interface ValidError {
  memberNames: string[];
  errorMessage: string;
}

/** The form an error takes on the wire: code, message and optional data. */
export interface WireError {
  code: ErrorCode;
  message: string;
  data?: unknown;
  validErrors?: ValidError[];
}

export interface WeftErrorOptions {
  data?: unknown;
  validErrors?: ValidError[];
  cause?: unknown;
}

/**
 * What marks a real weft error, across copies of the package: `Symbol.for`
 * gives every copy the same symbol, and only `WeftError.prototype` carries it.
 * A `code` property alone does not make an error a weft error.
 */
const WEFT_ERROR_MARK = Symbol.for('weft.error');

/**
 * An error with a catalogue code. Thrown by a service (or a hook), it reaches
 * the caller with its code, message, `data` and `validErrors`, never its
 * stack or `cause`.
 *
 * @example
 * throw new WeftError('NotFound', 'no user 42');
 */
export class WeftError extends Error {
  readonly code: ErrorCode;
  readonly data: unknown;
  readonly validErrors: ValidError[] | undefined;

  constructor(code: ErrorCode, message: string, options: WeftErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = code;
    this.code = code;
    this.data = options.data;
    this.validErrors = options.validErrors;
  }

  get status(): number {
    return ERRORS[this.code].status;
  }

  get httpStatus(): number {
    return ERRORS[this.code].httpStatus;
  }

  get retryable(): boolean {
    return ERRORS[this.code].retryable;
  }
}

// On the prototype, not the instance: not enumerable, not copied by a spread, not in JSON.
Object.defineProperty(WeftError.prototype, WEFT_ERROR_MARK, { value: true });

/**
 * The seed's `BusinessException`: a refusal the caller should show or handle.
 *
 * @example
 * throw new BusinessException(`no session exists for businessId ${businessId}`);
 */
export class BusinessException extends WeftError {
  constructor(message: string, options: WeftErrorOptions = {}) {
    super('BusinessError', message, options);
  }
}

/**
 * A message for the end user, shown as it is.
 *
 * @example
 * throw new UserFriendlyException('Your basket is empty');
 */
export class UserFriendlyException extends WeftError {
  constructor(message: string, options: WeftErrorOptions = {}) {
    super('UserFriendly', message, options);
  }
}

/**
 * Arguments that break a rule the schema cannot express.
 *
 * @example
 * throw new ValidationException('bad date range', [{ memberNames: ['to'], errorMessage: 'before from' }]);
 */
export class ValidationException extends WeftError {
  constructor(message: string, validErrors: ValidError[], options: WeftErrorOptions = {}) {
    super('ValidateError', message, { ...options, validErrors });
  }
}

function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERRORS, value);
}

/**
 * Is `error` a weft error (a `WeftError` of this copy of weft or of another),
 * and (when `code` is given) of that code? A plain object or a foreign error
 * with a `code` that happens to be a catalogue name is not one.
 *
 * @example
 * try {
 *   console.log(await host.proxy(IGreeterAppService).greet('ann'));
 * } catch (e) {
 *   if (!isWeftError(e, 'ServiceUnavailable')) throw e;
 *   console.log('no greeter is up:', e.message);
 * }
 */
export function isWeftError(error: unknown, code?: ErrorCode): error is WeftError {
  if (typeof error !== 'object' || error === null) return false;
  if ((error as { [WEFT_ERROR_MARK]?: unknown })[WEFT_ERROR_MARK] !== true) return false;
  const actual = (error as { code?: unknown }).code;
  if (!isErrorCode(actual)) return false;
  return code === undefined || actual === code;
}

/** The message of an error hidden from a client. */
const HIDDEN_MESSAGE = 'internal server error';

/**
 * Turns anything thrown into the WeftError a client may see. A weft error
 * keeps its code and message (one of another copy of weft is rebuilt as one
 * of this copy); anything else becomes ServerError with a generic message,
 * the original kept as `cause` for the log (never sent).
 */
export function toWeftError(error: unknown): WeftError {
  if (error instanceof WeftError && isErrorCode(error.code)) return error;
  if (isWeftError(error)) {
    const options: WeftErrorOptions = { data: error.data, cause: error };
    if (error.validErrors !== undefined) options.validErrors = error.validErrors;
    return new WeftError(error.code, typeof error.message === 'string' ? error.message : HIDDEN_MESSAGE, options);
  }
  return new WeftError('ServerError', HIDDEN_MESSAGE, { cause: error });
}

/** The wire form: no stack, no cause. */
export function toWire(error: WeftError): WireError {
  const wire: WireError = { code: error.code, message: error.message };
  if (error.data !== undefined) wire.data = error.data;
  if (error.validErrors !== undefined) wire.validErrors = error.validErrors;
  return wire;
}

/** Rebuilds an error received from a peer; an unknown code becomes ServerError. */
export function fromWire(wire: unknown): WeftError {
  if (typeof wire !== 'object' || wire === null) {
    return new WeftError('ServerError', 'malformed error from peer');
  }
  const w = wire as Partial<WireError>;
  const code = isErrorCode(w.code) ? w.code : 'ServerError';
  const message = typeof w.message === 'string' ? w.message : 'error from peer';
  const options: WeftErrorOptions = {};
  if (w.data !== undefined) options.data = w.data;
  if (Array.isArray(w.validErrors)) options.validErrors = w.validErrors;
  switch (code) {
    case 'BusinessError':
      return new BusinessException(message, options);
    case 'UserFriendly':
      return new UserFriendlyException(message, options);
    case 'ValidateError':
      return new ValidationException(message, options.validErrors ?? [], options);
    default:
      return new WeftError(code, message, options);
  }
}

/** Shorthand used at construction time: the message names the option. */
export function invalidOption(name: string, problem: string): WeftError {
  return new WeftError('InvalidOption', `option "${name}" ${problem}`);
}
