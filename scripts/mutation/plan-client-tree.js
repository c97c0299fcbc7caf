'use strict';
/**
 * Mutation groups of the client's tree code (put -r, get -r, ls): which names it accepts, the
 * order it merges listings in, the pages it reads. Kept apart from plan.js so the plan stays short
 * enough to read; plan.js spreads these groups in. Same shape: group(label, mutate, tests, equivalent).
 * Each equivalent entry has its reason beside it (for test/MUTATION.md); the tests are in-process
 * (test/unit/client/), against the real server on 127.0.0.1 or a scripted one, on real temp folders.
 */
module.exports = (group) => [
  group(
    'client-tree-names-order',
    ['src/client/listed-names.ts', 'src/client/name-order.ts', 'src/client/in-batches.ts', 'src/client/listing-cursor.ts', 'src/client/local-tree-walk.ts'],
    [
      'unit/client/listed-names.test.ts',
      'unit/client/name-order.test.ts',
      'unit/client/listing-cursor-rules.test.ts',
      'client/listing-cursor.test.ts',
      'unit/client/local-tree-walk.test.ts',
    ],
    [
      // indexOf('') finds '' at 0: the check then looks for the name '', which no listing can hold.
      'src/client/listed-names.ts:50 StringLiteral',
      // `outOfOrder ?? ''`: never evaluated (no coverage): the order error needs both orders broken, which sets `outOfOrder`.
      'src/client/listed-names.ts:55 StringLiteral',
      // `last ?? ''` after an empty page: the same find reads on (its name is past both), so that value is never compared.
      'src/client/listing-cursor.ts:42 LogicalOperator',
      // The comparator's 0-or-1 side: V8's sort only asks `< 0`, and equal keys are NFC twins (one remote name either way).
      'src/client/local-tree-walk.ts:11 EqualityOperator',
      'src/client/local-tree-walk.ts:11 ConditionalExpression',
      // Inside `x[i] !== y[i]`: `<` and `<=` agree.
      'src/client/name-order.ts:11 EqualityOperator',
      // Buffer.from(s, ''): an empty encoding is UTF-8, the default.
      'src/client/name-order.ts:17 StringLiteral',
    ],
  ),
  group('client-tree-list-request', ['src/client/list.request.ts'], ['unit/client/list-pages.test.ts'], [
    // The '' cursor when no page is asked after: the request line then carries no cursor at all.
    'src/client/list.request.ts:38 StringLiteral',
    // A failed send swallowed instead of explained: the next read gets the same last line (its reason, or CONNECTION_LOST).
    'src/client/list.request.ts:40 ArrowFunction',
  ]),
  group('client-tree-upload', ['src/client/upload-tree.ts'], ['unit/client/upload-tree.test.ts'], [
    // A file that failed before it was looked at has no server entry: identicalFiles answers false without its path.
    'src/client/upload-tree.ts:113 ObjectLiteral',
    'src/client/upload-tree.ts:113 StringLiteral',
    // `resumableFromBytes !== undefined`: `size >= undefined` is false as well.
    'src/client/upload-tree.ts:181 ConditionalExpression',
  ]),
  group('client-tree-download', ['src/client/download-tree.ts'], ['unit/client/download-tree.test.ts'], []),
];
