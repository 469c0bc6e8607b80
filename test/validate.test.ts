/**
 * ArgsValidator: argument checks on the serving side and the validErrors
 * they produce (what an HTTP caller sees in `validErrors`).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ArgsValidator, MAX_ERRORS_PER_PARAM } from '../src/contract/validate.js';
import { param, Type, type MethodDef } from '../src/index.js';

const createOrder: MethodDef = {
  params: [
    param('customerId', Type.String({ minLength: 1 })),
    param(
      'order',
      Type.Object({
        lines: Type.Array(Type.Object({ sku: Type.String(), qty: Type.Integer({ minimum: 1 }) }), { minItems: 1 }),
        address: Type.Object({ city: Type.String(), zip: Type.String({ pattern: '^[0-9]{5}$' }) }),
      }),
    ),
    param('note', Type.Optional(Type.String({ maxLength: 10 }))),
  ],
};

const validOrder = { lines: [{ sku: 'a', qty: 1 }], address: { city: 'Lyon', zip: '69001' } };

function members(errors: { memberNames: string[] }[] | undefined): string[] {
  return (errors ?? []).flatMap((e) => e.memberNames);
}

test('valid arguments give no errors, with or without the optional one', () => {
  const v = new ArgsValidator(createOrder);
  assert.equal(v.validate(['c1', validOrder]), undefined);
  assert.equal(v.validate(['c1', validOrder, 'ring twice']), undefined);
  assert.equal(v.validate(['c1', validOrder, undefined]), undefined, 'an optional argument may be undefined');
});

test('a missing required argument is reported by name', () => {
  const v = new ArgsValidator(createOrder);
  const errors = v.validate(['c1']);
  assert.deepEqual(errors, [{ memberNames: ['order'], errorMessage: 'order is required' }]);
  assert.deepEqual(members(v.validate([])), ['customerId', 'order']);
  assert.deepEqual(members(v.validate([undefined, validOrder])), ['customerId']);
});

test('every bad field is reported, each in memberNames', () => {
  const v = new ArgsValidator(createOrder);
  const errors = v.validate(['', validOrder, 'far too long a note'])!;
  assert.ok(errors !== undefined);
  const names = members(errors);
  assert.ok(names.includes('customerId'), names.join());
  assert.ok(names.includes('note'), names.join());
  for (const e of errors) assert.equal(typeof e.errorMessage, 'string');
});

test('errors inside a complex argument name the nested path with dots', () => {
  const v = new ArgsValidator(createOrder);
  const errors = v.validate([
    'c1',
    {
      lines: [
        { sku: 'a', qty: 0 },
        { sku: 7, qty: 1 },
      ],
      address: { city: 'Lyon', zip: 'abc' },
    },
  ]);
  const names = members(errors);
  assert.ok(names.includes('order.lines.0.qty'), names.join());
  assert.ok(names.includes('order.lines.1.sku'), names.join());
  assert.ok(names.includes('order.address.zip'), names.join());
  assert.ok(!names.some((n) => n.startsWith('customerId')), 'the good argument is not reported');
});

test('a missing nested property is reported at its path', () => {
  const v = new ArgsValidator(createOrder);
  const names = members(v.validate(['c1', { lines: [{ sku: 'a', qty: 1 }], address: { city: 'Lyon' } }]));
  assert.ok(names.includes('order.address.zip'), names.join());
});

test('an argument of the wrong type is reported at the parameter name', () => {
  const v = new ArgsValidator(createOrder);
  const names = members(v.validate([42, 'not an object']));
  assert.ok(names.includes('customerId'), names.join());
  assert.ok(names.includes('order'), names.join());
});

test('extra arguments are refused', () => {
  const v = new ArgsValidator(createOrder);
  const errors = v.validate(['c1', validOrder, 'note', 'extra'])!;
  assert.ok(errors !== undefined);
  assert.ok(errors.some((e) => e.memberNames.length === 0 && e.errorMessage.includes('at most 3 arguments, got 4')));
  const none = new ArgsValidator({ params: [] });
  assert.equal(none.validate([]), undefined);
  assert.ok(none.validate([1]) !== undefined, 'a method without parameters refuses one');
});

test('null is not undefined: a required argument given null is checked against its schema', () => {
  const v = new ArgsValidator({ params: [param('name', Type.String())] });
  assert.deepEqual(members(v.validate([null])), ['name']);
  const nullable = new ArgsValidator({ params: [param('name', Type.Union([Type.String(), Type.Null()]))] });
  assert.equal(nullable.validate([null]), undefined);
});

test('a huge invalid argument yields a bounded list of errors that says there are more', () => {
  const validator = new ArgsValidator({ params: [param('items', Type.Array(Type.Integer()))] });
  const errors = validator.validate([Array.from({ length: 100_000 }, () => 'x')]) ?? [];
  assert.ok(errors.length <= MAX_ERRORS_PER_PARAM + 1, `${errors.length} errors`);
  assert.equal(errors.at(-1)?.errorMessage, 'more errors not listed');
});
