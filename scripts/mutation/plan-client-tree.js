'use strict';
/**
 * Mutation groups of the client's tree code (put -r, get -r, ls): which names it accepts, the
 * order it merges listings in, the pages it reads. Kept apart from plan.js so the plan stays short
 * enough to read; plan.js spreads these groups in. Same shape: group(label, mutate, tests, equivalent).
 * Each equivalent entry has its reason beside it (for test/MUTATION.md); the tests are in-process
 * (test/unit/client/), against the real server on 127.0.0.1 or a scripted one, on real temp folders.
 */
module.exports = (group) => [
  // A download, alone or many to a request (get -r's small files, issue 20), and the checked rename
  // that puts a tree's file into the folder that was checked (hostile pass o).
  group(
    'client-downloads',
    ['src/client/download-file.request.ts', 'src/client/checked-rename.ts'],
    ['client/download-files.test.ts', 'unit/client/checked-rename.test.ts', 'client/rxfer-client.test.ts', 'unit/client/download-tree.test.ts'],
    [
      // The looks skipped for a file of a new folder are a saving only: looking anyway (`!== true` → true,
      // `??` → `&&`, `true` → `false`, refuseDirectory always) gives the same answers, with more system calls.
      'src/client/download-file.request.ts:165 ConditionalExpression',
      'src/client/download-file.request.ts:165 LogicalOperator',
      'src/client/download-file.request.ts:165 BooleanLiteral',
      'src/client/download-file.request.ts:166 ConditionalExpression',
      // In memory or a staging file for a file of up to 64 KiB: either lands the same bytes, verified.
      'src/client/download-file.request.ts:187 ConditionalExpression',
      'src/client/download-file.request.ts:187 EqualityOperator',
      // `!verified && …` → `||`, or `verified = true` → false: a verified file fails only in its commit,
      // with LOCAL_IO, never an interruption.
      'src/client/download-file.request.ts:206 BooleanLiteral',
      'src/client/download-file.request.ts:210 LogicalOperator',
      // A group of none sends an empty write (`=== 0` → false): nothing on the wire.
      'src/client/download-file.request.ts:257 ConditionalExpression',
      // A failed send: explained (explainLoss), swallowed, or not looked at, the replies read next fail
      // with the same lost connection; explainLoss adds the server's last ERR line when it sent one.
      'src/client/download-file.request.ts:45 ArrowFunction',
      'src/client/download-file.request.ts:260 ArrowFunction',
      'src/client/download-file.request.ts:267 ConditionalExpression',
    ],
  ),
  // BATCH on the client (issue 20): the queue that gathers files into batches, and one batch's request and replies.
  group('client-batch', ['src/client/batch-queue.ts', 'src/client/upload-batch.request.ts'], ['client/upload-batch.test.ts'], []),
  // Where a listed name lands on this machine (get -r's guard against a hostile server), and resolvedPath.
  group('client-local-target', ['src/client/local-target.ts'], ['unit/client/local-target.test.ts', 'unit/client/listed-names.test.ts'], [
    // resolvedPath's test for a path path.resolve would return unchanged: every mutant that takes the
    // fast path less often falls back to path.resolve, which gives the same answer (only slower); the
    // property test holds the fast path to path.resolve for every path, line terminators included.
    'src/client/local-target.ts:12 ConditionalExpression',
    'src/client/local-target.ts:12 EqualityOperator',
    'src/client/local-target.ts:12 StringLiteral',
    'src/client/local-target.ts:12 MethodExpression',
    'src/client/local-target.ts:12 LogicalOperator',
    // `sep === '/'` before `root/rel`: without the shortcut, POSIX takes the resolve-and-check path, with the same answer.
    'src/client/local-target.ts:35 ConditionalExpression',
    'src/client/local-target.ts:35 EqualityOperator',
    'src/client/local-target.ts:35 StringLiteral',
    // The resolve-and-check path runs where the separator is not "/" (Windows): never on the POSIX machines
    // these tests run on. Its refusal cannot fire after parseRemoteName anyway (no ".." segment gets there).
    'src/client/local-target.ts:36 StringLiteral',
    'src/client/local-target.ts:38 ConditionalExpression',
    'src/client/local-target.ts:38 LogicalOperator',
    'src/client/local-target.ts:38 EqualityOperator',
    'src/client/local-target.ts:38 StringLiteral',
    'src/client/local-target.ts:38 MethodExpression',
    'src/client/local-target.ts:38 BlockStatement',
    'src/client/local-target.ts:39 StringLiteral',
  ]),
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
      // The constructor's `root = resolve(localDir)` emptied: localPathFor's default parameter resolves it per name instead.
      'src/client/listed-names.ts:39 BlockStatement',
      // indexOf('') finds '' at 0: the check then looks for the name '', which no listing can hold.
      'src/client/listed-names.ts:55 StringLiteral',
      // `outOfOrder ?? ''`: never evaluated (no coverage): the order error needs both orders broken, which sets `outOfOrder`.
      'src/client/listed-names.ts:60 StringLiteral',
      // `last ?? ''` after an empty page: the same find reads on (its name is past both), so that value is never compared.
      'src/client/listing-cursor.ts:42 LogicalOperator',
      // The comparator's 0-or-1 side: V8's sort only asks `< 0`, and equal keys are NFC twins (one remote name either way).
      'src/client/local-tree-walk.ts:15 EqualityOperator',
      'src/client/local-tree-walk.ts:15 ConditionalExpression',
      // Inside `x[i] !== y[i]`: `<` and `<=` agree.
      'src/client/name-order.ts:11 EqualityOperator',
      // Buffer.from(s, ''): an empty encoding is UTF-8, the default.
      'src/client/name-order.ts:17 StringLiteral',
      // The U+FFFD test made always true, or `includes('')`: every folder read again as bytes, which finds nothing more.
      'src/client/local-tree-walk.ts:38 ConditionalExpression',
      'src/client/local-tree-walk.ts:38 StringLiteral',
      // raw.toString(''): an empty encoding is UTF-8, the default.
      'src/client/local-tree-walk.ts:68 StringLiteral',
    ],
  ),
  group('client-tree-list-request', ['src/client/list.request.ts'], ['unit/client/list-pages.test.ts'], [
    // The '' cursor when no page is asked after: the request line then carries no cursor at all.
    'src/client/list.request.ts:37 StringLiteral',
    // A failed send swallowed instead of explained: the next read gets the same last line (its reason, or CONNECTION_LOST).
    'src/client/list.request.ts:39 ArrowFunction',
  ]),
  group('client-tree-upload', ['src/client/upload-tree.ts'], ['unit/client/upload-tree.test.ts', 'unit/client/upload-tree-digest-cache.test.ts'], [
    // A file that failed before it was looked at, or whose digest the cache knows, is given no server entry:
    // identicalFiles answers false without its path (and a cached file's answer is not used).
    'src/client/upload-tree.ts:195 ObjectLiteral',
    'src/client/upload-tree.ts:195 StringLiteral',
    // A file the cache knows read and hashed anyway (`|| known[i] !== undefined` dropped): its answer is not used.
    'src/client/upload-tree.ts:195 ConditionalExpression',
    'src/client/upload-tree.ts:195 LogicalOperator',
    // Without the cache (place unused), -1 or +1 alike.
    'src/client/upload-tree.ts:199 UnaryOperator',
    // A cache hit recorded through `record` (a second lstat) instead of `carry`: the same line; `cache?.` there
    // only ever sees a cache (a record comes from one).
    'src/client/upload-tree.ts:204 ConditionalExpression',
    'src/client/upload-tree.ts:204 OptionalChaining',
    // The version a small file was read in not taken, or not compared: recorded through `record`'s lstat instead,
    // or (`sameVersion` → true) a record of a state the file has left, which no later lstat can give again
    // (ctime only moves forward; digest-cache.ts): never a file skipped that differs.
    'src/client/upload-tree.ts:228 ArrowFunction',
    'src/client/upload-tree.ts:239 ConditionalExpression',
    'src/client/upload-tree.ts:240 ConditionalExpression',
    // `resumableFromBytes !== undefined`: `size >= undefined` is false as well.
    'src/client/upload-tree.ts:285 ConditionalExpression',
  ]),
  group('client-digest-cache', ['src/client/digest-cache.ts'], ['unit/client/digest-cache.test.ts'], [
    // Faster paths of the fourteenth session's rework, each giving what the plain path gives: a state's text made again
    // each time (its WeakMap cache skipped); the cursor's text before its first read and after close holding no line break
    // (so no line is cut from it); a record compared `>= 0` after the equal names already returned (compareSegments is 0
    // only for equal names); a chunk always concatenated with an empty leftover; a record settled in order sent down the
    // general path (the map, then the same loop).
    'src/client/digest-cache.ts:83:7 ConditionalExpression → true',
    'src/client/digest-cache.ts:108:19 StringLiteral → "Stryker was here!"',
    'src/client/digest-cache.ts:141:11 EqualityOperator → compareSegments(record.name, name) >= 0',
    'src/client/digest-cache.ts:156:18 StringLiteral → "Stryker was here!"',
    'src/client/digest-cache.ts:183:21 ConditionalExpression → false',
    'src/client/digest-cache.ts:333:9 ConditionalExpression → false',
    'src/client/digest-cache.ts:333:57 BlockStatement → {}',
    // Comparing the device too (made true; size, mtimes and inode are local-io's sameVersion, out of scope): every change of those moves ctime as well, which is compared first; a device differing with the same ns ctime and inode is out of reach (whole-second ctimes are never recorded).
    'src/client/digest-cache.ts:51 ConditionalExpression',
    // The record cursor's own guards: a cursor without a file, or closed, reads from no descriptor, which throws, and every find is then caught as no record; the first-test fast path and the `order === 0`/`> 0` tests after it (compareSegments is 0 only for equal names, which the fast path already returned); `continue` after a parsed line (the next turn compares it); close's catch (empty either way) and its descriptor test (a read-only descriptor left open until exit, or closeSync(undefined) throwing into that catch).
    'src/client/digest-cache.ts:115 BlockStatement',
    'src/client/digest-cache.ts:116 BooleanLiteral',
    'src/client/digest-cache.ts:116 ConditionalExpression',
    'src/client/digest-cache.ts:131 ConditionalExpression',
    'src/client/digest-cache.ts:148 BlockStatement',
    'src/client/digest-cache.ts:149 ConditionalExpression',
    'src/client/digest-cache.ts:149 EqualityOperator',
    'src/client/digest-cache.ts:154 BooleanLiteral',
    'src/client/digest-cache.ts:176 ConditionalExpression',
    // Text that is overwritten before use or never parsed as a record: the initial buffer (the constructor sets the header), a skipped place written as an unparsable line (passed over), the buffer emptied after an abandon.
    'src/client/digest-cache.ts:202 StringLiteral',
    'src/client/digest-cache.ts:280 StringLiteral',
    'src/client/digest-cache.ts:368 StringLiteral',
    // Catch blocks that set what is already set (old undefined, the function's undefined), `still`'s first value (always assigned in try or catch), a 128-bit key shortened or not.
    'src/client/digest-cache.ts:240 MethodExpression',
    'src/client/digest-cache.ts:252 BlockStatement',
    'src/client/digest-cache.ts:257 BlockStatement',
    'src/client/digest-cache.ts:290 BooleanLiteral',
    'src/client/digest-cache.ts:293 BlockStatement',
    // When the lines reach the file: flushing at every settle, never before the commit, or at a bound of <= / >=, and '' for 'utf8' (the default): the same bytes are in the file when it is renamed into place; a commit with no temporary file returns from flush either way.
    'src/client/digest-cache.ts:315 ConditionalExpression',
    'src/client/digest-cache.ts:344 BooleanLiteral',
    'src/client/digest-cache.ts:348 BooleanLiteral',
    'src/client/digest-cache.ts:348 ConditionalExpression',
    'src/client/digest-cache.ts:348 EqualityOperator',
    'src/client/digest-cache.ts:348 LogicalOperator',
    'src/client/digest-cache.ts:350 StringLiteral',
    // Abandon's cleanup: a descriptor left open until exit, rmSync without `force` on a file that is there (a missing one throws inside the same try).
    'src/client/digest-cache.ts:362 ConditionalExpression',
    'src/client/digest-cache.ts:363 ObjectLiteral',
    'src/client/digest-cache.ts:363 BooleanLiteral',
    // process.getuid exists on every POSIX system this runs on, so `?.` and the `uid === undefined` branch change nothing here; statSync's throwIfNoEntry only matters for a file removed between readdir and stat; the sweep's `>` against `>=` at millisecond resolution, rmSync's options on an existing file, `stats?.` on a defined stats.
    'src/client/digest-cache.ts:377 OptionalChaining',
    'src/client/digest-cache.ts:378 ConditionalExpression',
    'src/client/digest-cache.ts:390 ObjectLiteral',
    'src/client/digest-cache.ts:390 BooleanLiteral',
    'src/client/digest-cache.ts:392 EqualityOperator',
    'src/client/digest-cache.ts:392 ObjectLiteral',
    'src/client/digest-cache.ts:392 BooleanLiteral',
    'src/client/digest-cache.ts:392 OptionalChaining',
    // Not covered (no test makes the cache file fail to read or write), judged: the constructor's catch of a header that
    // cannot be read emptied leaves the cursor open, and every find then throws into its own catch, which answers no
    // record; `this.out = undefined` where it is undefined already; find's catch emptied falls off as undefined too.
    'src/client/digest-cache.ts:216:13 BlockStatement → {}',
    'src/client/digest-cache.ts:223:13 BlockStatement → {}',
    'src/client/digest-cache.ts:267:13 BlockStatement → {}',
    // flush's catch of a failed write emptied, or its rethrow made always/never: the cache may then be committed with
    // lines missing or cut. Not equivalent in bytes, equal in outcome: a missing record, or a torn line (it fails to
    // parse or to match a file's state), costs the file a re-read, never a skip of a file that differs.
    'src/client/digest-cache.ts:354:19 BlockStatement → {}',
    'src/client/digest-cache.ts:356:11 ConditionalExpression → true',
    'src/client/digest-cache.ts:356:11 ConditionalExpression → false',
    // Not listed (not covered, so not judged): the catch blocks of a header that cannot be read (:176), a temporary file that
    // cannot be opened (:183), a find that throws (:227), a write that fails midway (:307, :309).
  ]),
  group('client-tree-download', ['src/client/download-tree.ts'], ['unit/client/download-tree.test.ts', 'regressions/hostile-2026-12-06o-grouped-downloads.test.ts'], [
    // Checking a folder again on a later page (the set is a saving only): the same answer.
    'src/client/download-tree.ts:206 ConditionalExpression',
    // Grouping is a saving only (twentieth session): an empty group sent (`files.length === 0` → false) is
    // downloadFiles([]), which settles at once; every file grouped (`<=` → true), the boundary (`<`), or a
    // group sent at every file but the 16th (`!==`): each file is still downloaded, verified and told.
    'src/client/download-tree.ts:173 ConditionalExpression',
    'src/client/download-tree.ts:218 ConditionalExpression',
    'src/client/download-tree.ts:218 EqualityOperator',
    'src/client/download-tree.ts:219 EqualityOperator',
    // A group's rejection handler: downloadFiles settles each file and never rejects (a safety net).
    'src/client/download-tree.ts:185 ArrowFunction',
    // Waiting for the downloads in flight when the connection is not closed (`isClosed` → true): the
    // finally waits for them anyway before the error is thrown.
    'src/client/download-tree.ts:237 ConditionalExpression',
    // The step's name in the message of a realpath that failed (LOCAL_IO either way).
    'src/client/download-tree.ts:139 StringLiteral',
    // refuseLinkBelow's loop guard `path.startsWith(root + sep)` is a safety net: every folder is below root,
    // so `||` and `true` stop at root just the same.
    // `root.startsWith(sep)` for `endsWith`: root is absolute, so `inside` is root itself, and every folder
    // checked is below it all the same ("/" is covered: it ends in the separator too).
    'src/client/download-tree.ts:89 MethodExpression',
    'src/client/download-tree.ts:90 LogicalOperator',
    'src/client/download-tree.ts:90 ConditionalExpression',
  ]),
];
