/**
 * docs/errors.md against the catalogue, and the error helpers of
 * src/errors.ts (wire form, rebuilding by code, identification by code).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ERRORS, BusinessException, UserFriendlyException, ValidationException, WeftError, isWeftError, type ErrorCode } from '../src/index.js';
import { fromWire, toWeftError, toWire } from '../src/errors.js';
import { errorBody, successBody } from '../src/gateway/responses.js';

const DOC = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');

interface DocRow {
  code: string;
  status: number;
  http: number;
  retryable: boolean;
  when: string;
}

function catalogueTable(): DocRow[] {
  const lines = DOC.split('\n');
  const start = lines.findIndex((l) => /^\|\s*code\s*\|\s*status\s*\|\s*HTTP\s*\|\s*retryable\s*\|/.test(l));
  assert.ok(start >= 0, 'docs/errors.md has the catalogue table');
  const rows: DocRow[] = [];
  for (let i = start + 2; i < lines.length && lines[i]!.startsWith('|'); i++) {
    const cells = lines[i]!.replace(/^\||\|$/g, '')
      .split('|')
      .map((c) => c.trim());
    assert.equal(cells.length, 5, `line ${i + 1} has 5 cells`);
    const [code, status, http, retryable, when] = cells as [string, string, string, string, string];
    assert.ok(retryable === 'yes' || retryable === 'no', `retryable of ${code} is yes or no`);
    rows.push({ code, status: Number(status), http: Number(http), retryable: retryable === 'yes', when });
  }
  return rows;
}

test('docs/errors.md lists exactly the codes of the catalogue, each once', () => {
  const codes = catalogueTable().map((r) => r.code);
  assert.equal(new Set(codes).size, codes.length, 'no code listed twice');
  assert.deepEqual([...codes].sort(), Object.keys(ERRORS).sort());
});

test('docs/errors.md gives each code the status, HTTP status and retryable flag of the catalogue', () => {
  for (const row of catalogueTable()) {
    const spec = ERRORS[row.code as ErrorCode];
    assert.equal(row.status, spec.status, `status of ${row.code}`);
    assert.equal(row.http, spec.httpStatus, `HTTP status of ${row.code}`);
    assert.equal(row.retryable, spec.retryable, `retryable of ${row.code}`);
    assert.ok(row.when.length > 20, `${row.code} says when it happens`);
  }
});

test('the statuses kept from Silky and the HTTP statuses of DESIGN section 6 hold', () => {
  assert.equal(ERRORS.BusinessError.status, 1000);
  assert.equal(ERRORS.ValidateError.status, 1001);
  assert.equal(ERRORS.UserFriendly.status, 1002);
  assert.equal(ERRORS.NotImplemented.status, 1003);
  for (const code of ['BusinessError', 'UserFriendly', 'ValidateError'] as const) assert.equal(ERRORS[code].httpStatus, 400);
  assert.equal(ERRORS.Unauthenticated.httpStatus, 401);
  assert.equal(ERRORS.Unauthorized.httpStatus, 403);
  assert.equal(ERRORS.NotFound.httpStatus, 404);
  assert.equal(ERRORS.ServiceUnavailable.httpStatus, 503);
  assert.equal(ERRORS.Timeout.httpStatus, 504);
  assert.equal(ERRORS.ServerError.httpStatus, 500);
});

test('a WeftError reports the status, HTTP status and retryable flag of its code', () => {
  for (const code of Object.keys(ERRORS) as ErrorCode[]) {
    const e = new WeftError(code, 'x');
    assert.equal(e.code, code);
    assert.equal(e.name, code);
    assert.equal(e.status, ERRORS[code].status);
    assert.equal(e.httpStatus, ERRORS[code].httpStatus);
    assert.equal(e.retryable, ERRORS[code].retryable);
  }
});

test('the wire form never carries a stack or a cause', () => {
  const cause = new Error('secret database password in here');
  const error = new WeftError('ServerError', 'internal server error', {
    cause,
    data: { orderId: 7 },
    validErrors: [{ memberNames: ['a'], errorMessage: 'bad' }],
  });
  assert.ok(error.stack !== undefined && error.stack.length > 0);
  const wire = toWire(error);
  assert.deepEqual(Object.keys(wire).sort(), ['code', 'data', 'message', 'validErrors']);
  const json = JSON.stringify(wire);
  assert.ok(!json.includes('secret database password'), 'the cause is not in the wire form');
  const frame = error.stack.split('\n')[1]!.trim();
  assert.ok(!json.includes(frame) && !json.includes('stack'), 'no stack frame is in the wire form');
  assert.deepEqual(wire, {
    code: 'ServerError',
    message: 'internal server error',
    data: { orderId: 7 },
    validErrors: [{ memberNames: ['a'], errorMessage: 'bad' }],
  });
});

test('the wire form leaves out data and validErrors when they are not set', () => {
  assert.deepEqual(toWire(new BusinessException('no session exists for businessId 100')), {
    code: 'BusinessError',
    message: 'no session exists for businessId 100',
  });
});

test('fromWire rebuilds a BusinessException from its code', () => {
  const e = fromWire({ code: 'BusinessError', message: 'no session exists for businessId 100', data: { businessId: '100' } });
  assert.ok(e instanceof BusinessException);
  assert.equal(e.code, 'BusinessError');
  assert.equal(e.message, 'no session exists for businessId 100');
  assert.deepEqual(e.data, { businessId: '100' });
});

test('fromWire rebuilds a ValidationException with its validErrors', () => {
  const validErrors = [{ memberNames: ['dto.name'], errorMessage: 'Expected string' }];
  const e = fromWire({ code: 'ValidateError', message: 'invalid arguments', validErrors });
  assert.ok(e instanceof ValidationException);
  assert.equal(e.code, 'ValidateError');
  assert.deepEqual(e.validErrors, validErrors);
});

test('fromWire rebuilds a UserFriendlyException and keeps other known codes', () => {
  assert.ok(fromWire({ code: 'UserFriendly', message: 'basket empty' }) instanceof UserFriendlyException);
  const timeout = fromWire({ code: 'Timeout', message: 'too slow' });
  assert.equal(timeout.code, 'Timeout');
  assert.equal(timeout.message, 'too slow');
  assert.equal(timeout.retryable, false);
});

test('fromWire turns an unknown code into ServerError', () => {
  const e = fromWire({ code: 'SomethingFromTheFuture', message: 'newer peer' });
  assert.equal(e.code, 'ServerError');
  assert.equal(e.httpStatus, 500);
  assert.equal(fromWire('not an object').code, 'ServerError');
  assert.equal(fromWire(null).code, 'ServerError');
});

test('an error survives toWire and fromWire with its code, message, data and validErrors', () => {
  for (const code of Object.keys(ERRORS) as ErrorCode[]) {
    const original = new WeftError(code, `m ${code}`, { data: [1, 'two'], validErrors: [{ memberNames: ['x'], errorMessage: 'y' }] });
    const back = fromWire(JSON.parse(JSON.stringify(toWire(original))));
    assert.equal(back.code, code);
    assert.equal(back.message, `m ${code}`);
    assert.deepEqual(back.data, [1, 'two']);
    assert.deepEqual(back.validErrors, [{ memberNames: ['x'], errorMessage: 'y' }]);
  }
});

/** A WeftError as another copy of weft in the same tree makes one: another class, the same global mark on its prototype. */
function fromAnotherCopy(code: string, message: string): Error & { code: string } {
  class OtherWeftError extends Error {
    readonly code: string;
    constructor() {
      super(message);
      this.name = code;
      this.code = code;
    }
  }
  Object.defineProperty(OtherWeftError.prototype, Symbol.for('weft.error'), { value: true });
  return new OtherWeftError();
}

test('isWeftError recognizes a WeftError of another copy of the package by its mark, not by its class', () => {
  const other = fromAnotherCopy('BusinessError', 'from another copy of weft');
  assert.ok(!(other instanceof WeftError));
  assert.equal(isWeftError(other), true);
  assert.equal(isWeftError(other, 'BusinessError'), true);
  assert.equal(isWeftError(other, 'NotFound'), false);
});

test('isWeftError refuses a plain object or a foreign error whose code happens to be a catalogue name', () => {
  assert.equal(isWeftError({ name: 'BusinessError', code: 'BusinessError', message: 'forged' }), false);
  assert.equal(isWeftError(Object.assign(new Error('s3://bucket/key'), { code: 'NotFound' })), false);
  assert.equal(isWeftError({ ...new WeftError('NotFound', 'a spread copy loses the mark') }), false);
});

test('isWeftError refuses values without a catalogue code', () => {
  assert.equal(isWeftError({ code: 'ENOENT', message: 'fs error' }), false);
  assert.equal(isWeftError(new Error('plain')), false);
  assert.equal(isWeftError(null), false);
  assert.equal(isWeftError('BusinessError'), false);
  assert.equal(isWeftError(fromAnotherCopy('NoSuchCode', 'x')), false);
  assert.equal(isWeftError(new BusinessException('x'), 'BusinessError'), true);
});

test('toWeftError hides a foreign error behind a generic ServerError, even one with a catalogue code, and keeps weft errors', () => {
  const hidden = toWeftError(new Error('password=hunter2'));
  assert.equal(hidden.code, 'ServerError');
  assert.ok(!hidden.message.includes('hunter2'));
  assert.ok(!JSON.stringify(toWire(hidden)).includes('hunter2'));
  for (const foreign of [
    Object.assign(new Error('s3://bucket/key arn:aws:iam::1'), { code: 'NotFound' }),
    { code: 'Unauthorized', message: 'token of user 42 expired' },
  ]) {
    const converted = toWeftError(foreign);
    assert.equal(converted.code, 'ServerError');
    assert.equal(converted.message, 'internal server error');
    assert.equal(converted.cause, foreign, 'kept for the log');
    assert.deepEqual(toWire(converted), { code: 'ServerError', message: 'internal server error' });
  }
  const copied = toWeftError(fromAnotherCopy('NotFound', 'no user 42'));
  assert.ok(copied instanceof WeftError);
  assert.equal(copied.code, 'NotFound');
  assert.equal(copied.message, 'no user 42');
  const own = new BusinessException('mine');
  assert.equal(toWeftError(own), own);
  const remote = fromWire(toWire(new WeftError('Unauthorized', 'not yours')));
  assert.equal(toWeftError(remote), remote, 'an error rebuilt from a peer keeps its code');
});

test('the HTTP error body is the wrapper {result, status, code, errorMessage, validErrors}', () => {
  const body = JSON.parse(errorBody(new BusinessException('no session exists for businessId 100'))) as Record<string, unknown>;
  assert.deepEqual(body, {
    result: null,
    status: 1000,
    code: 'BusinessError',
    errorMessage: 'no session exists for businessId 100',
    validErrors: null,
  });
  const validErrors = [{ memberNames: ['msg'], errorMessage: 'msg is required' }];
  const invalid = JSON.parse(errorBody(new ValidationException('invalid arguments', validErrors))) as Record<string, unknown>;
  assert.equal(invalid['status'], 1001);
  assert.deepEqual(invalid['validErrors'], validErrors);
  const server = errorBody(new WeftError('ServerError', 'internal server error', { cause: new Error('boom') }));
  assert.ok(!server.includes('boom') && !server.includes('stack'));
});

test('the HTTP success body wraps the result with status 200 and code Success', () => {
  assert.deepEqual(JSON.parse(successBody({ a: 1 })), { result: { a: 1 }, status: 200, code: 'Success', errorMessage: null, validErrors: null });
  assert.deepEqual(JSON.parse(successBody(undefined)), { result: null, status: 200, code: 'Success', errorMessage: null, validErrors: null });
});
