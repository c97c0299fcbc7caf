'use strict';
/**
 * The mutation plan: which source files are mutated together, and the fast tests that must kill
 * their mutants (paths under test/, as RXFER_MUTATION_TESTS takes them). A Stryker run per group keeps
 * each mutant's cost to its own focused tests: the whole suite, or even one folder's server tests,
 * costs 5–15 s per mutant, which puts a full run at many hours (test/MUTATION.md).
 *
 * `equivalent`: survivors judged equivalent in test/MUTATION.md, as `path:line Mutator`; the runner
 * reports them apart, so a survivor it calls *unexplained* is one nobody has looked at yet.
 *
 * stryker.config.json's `mutate` stays the scope: a file in it that no group names is reported as
 * not measured by `npm run mutate`, never silently left out.
 */
const group = (label, mutate, tests, equivalent = [], options = {}) => ({ label, mutate, tests, equivalent, ...options });

/**
 * For a group whose mutants mostly hang (a reply or a worker that never comes, found only by Stryker's
 * timeout, then a Jest restart): two test processes even when two groups run side by side. Their
 * time is waiting, not CPU, so a third process on two cores overlaps the waits instead of competing.
 */
const MOSTLY_WAITING = { concurrency: 2 };

module.exports = [
  // --- protocol
  group('protocol-remote-name', ['src/protocol/remote-name.ts'], ['unit/protocol/remote-name.test.ts', 'unit/protocol/remote-name-fast-path.test.ts', 'promises/name-rules.test.ts'], [
    // Lines 42–48 and 54 are the ASCII fast path (issue 20), an optimisation only: a mutant that sends a name down the full
    // UTF-8 round trip instead (`typeof`/`ascii` → false, the length/U+FFFD test → false or `!==`, '\uFFFD' or 'utf8' → '', Buffer.from of a
    // Buffer, the NFC check run for ASCII too) gives the same answer by design; remote-name-fast-path.test.ts compares every answer
    // with the full check's and kills any mutant that changes one. (`!text.includes('\uFFFD')` alone already proves valid UTF-8:
    // every invalid sequence decodes to U+FFFD; the length test only skips the search.)
    'src/protocol/remote-name.ts:42 ConditionalExpression',
    'src/protocol/remote-name.ts:42 StringLiteral',
    'src/protocol/remote-name.ts:43 ConditionalExpression',
    'src/protocol/remote-name.ts:43 StringLiteral',
    'src/protocol/remote-name.ts:48 ConditionalExpression',
    'src/protocol/remote-name.ts:48 EqualityOperator',
    'src/protocol/remote-name.ts:48 StringLiteral',
    'src/protocol/remote-name.ts:54 ConditionalExpression',
    // printableName: `code < 0x100` → `<=` (U+0100 is not among the escaped characters) and its '' fallbacks (as before the lines moved).
    'src/protocol/remote-name.ts:75 EqualityOperator',
    'src/protocol/remote-name.ts:75 StringLiteral',
  ]),
  group('protocol-command', ['src/protocol/command.ts'], ['unit/protocol/command.test.ts', 'promises/command-framing.test.ts', 'unit/protocol/command-rules.test.ts', 'unit/protocol/batch-framing.test.ts'], [
    // nameLines: `command.verb === 'LIST' && 'paged' in command && command.after`. Only a paged LIST has an `after` (the
    // Command union's type), so dropping either guard, or joining them with ||, leaves `command.after` to decide alone.
    "src/protocol/command.ts:58:59 ConditionalExpression → true",
    "src/protocol/command.ts:58:59 LogicalOperator → command.verb === 'LIST' || 'paged' in command",
    'src/protocol/command.ts:82 Regex',
    'src/protocol/command.ts:83 Regex',
    'src/protocol/command.ts:89 StringLiteral',
    'src/protocol/command.ts:98 StringLiteral',
    'src/protocol/command.ts:115 ConditionalExpression',
    'src/protocol/command.ts:115 StringLiteral',
    'src/protocol/command.ts:118 ConditionalExpression',
    'src/protocol/command.ts:118 StringLiteral',
    'src/protocol/command.ts:168 StringLiteral',
  ]),
  group('protocol-reply-listing', ['src/protocol/reply.ts', 'src/protocol/listing.ts', 'src/protocol/protocol-limits.ts'], [
    'unit/protocol/reply.test.ts',
    'unit/protocol/reply-rules.test.ts',
    'unit/protocol/listing-rules.test.ts',
  ], [
    'src/protocol/reply.ts:77 StringLiteral',
    'src/protocol/reply.ts:92 StringLiteral',
    'src/protocol/listing.ts:35 StringLiteral',
    'src/protocol/listing.ts:46 Regex',
    'src/protocol/listing.ts:48 ConditionalExpression',
    'src/protocol/listing.ts:51 ConditionalExpression',
    'src/protocol/listing.ts:51 LogicalOperator',
    'src/protocol/listing.ts:51 StringLiteral',
  ]),
  group('protocol-frames', ['src/protocol/frame-decoder.ts', 'src/protocol/decode-frames.ts'], ['unit/protocol/frame-decoder-rules.test.ts', 'unit/protocol/batch-framing.test.ts'], [
    'src/protocol/frame-decoder.ts:113 ConditionalExpression',
    'src/protocol/frame-decoder.ts:116 ConditionalExpression',
    'src/protocol/frame-decoder.ts:116 EqualityOperator',
    'src/protocol/frame-decoder.ts:180 ArrayDeclaration',
  ]),

  // --- auth
  group('auth-token-directory', ['src/auth/token.ts', 'src/auth/user-directory.ts'], ['promises/auth-decoy.test.ts', 'promises/user-directory.test.ts'], [
    'src/auth/token.ts:35 ConditionalExpression',
    'src/auth/token.ts:35 LogicalOperator',
  ]),
  group('auth-user', ['src/auth/user.ts'], ['promises/roles.test.ts', 'promises/user-root-isolation.test.ts', 'promises/user-terms.test.ts'], [
    'src/auth/user.ts:29 StringLiteral',
  ]),

  // --- auth: quotas and slots
  group('auth-quota-ledger', ['src/auth/quota-ledger.ts'], ['unit/auth/quota-ledger.test.ts'], [
    // A new count's `stale: false` and `changedWhileMeasuring: false` → true: it has no stored count yet, so it is
    // measured anyway, and measure() clears the flag before its first walk.
    'src/auth/quota-ledger.ts:88:43 BooleanLiteral → true',
    'src/auth/quota-ledger.ts:88:95 BooleanLiteral → true',
    // changeStored's `delta === 0` return dropped: adding 0 changes nothing; it may only flag a walk under way to be
    // taken again (one walk more, the same count).
    'src/auth/quota-ledger.ts:170:19 ConditionalExpression → false',
    // The flag set on a fresh count too: no walk runs while the count is fresh (measure() runs only when it is missing
    // or stale), and the next walk clears the flag before it starts.
    'src/auth/quota-ledger.ts:173:9 ConditionalExpression → true',
    // freed's `bytes > 0`: storage never reports negative bytes freed, and 0 reaches changeStored's own `delta === 0`.
    'src/auth/quota-ledger.ts:189:9 ConditionalExpression → true',
    'src/auth/quota-ledger.ts:189:42 EqualityOperator → bytes >= 0',
    // admit()'s early return: it is called by the commit, before the reservation settles and after reserve() measured
    // (`settled`, `stored === undefined` never true there); an upload that replaces at least its credit leaves the count
    // where its admission put it, which that admission checked (so the check, made anyway, passes).
    'src/auth/quota-ledger.ts:223:13 ConditionalExpression → false',
    'src/auth/quota-ledger.ts:223:13 LogicalOperator → (settled || count.stored === undefined) && replacedBytes >= replacing',
    'src/auth/quota-ledger.ts:223:13 LogicalOperator → settled && count.stored === undefined',
    'src/auth/quota-ledger.ts:223:24 ConditionalExpression → false',
    'src/auth/quota-ledger.ts:223:54 ConditionalExpression → false',
    'src/auth/quota-ledger.ts:223:54 EqualityOperator → replacedBytes > replacing',
    // resumedFrom's `bytes <= 0`: a resume always continues a positive prefix, and 0 adds nothing anywhere.
    'src/auth/quota-ledger.ts:235:24 ConditionalExpression → false',
    'src/auth/quota-ledger.ts:235:24 EqualityOperator → bytes < 0',
    // quietFor's `what` for withinStorageDeadline: its error is replaced by the ledger's own, so the text never shows.
    'src/auth/quota-ledger.ts:142:60 StringLiteral → ``',
  ]),
  group('auth-transfer-slots', ['src/auth/transfer-slots.ts'], ['unit/auth/transfer-slots.test.ts'], [
    'src/auth/transfer-slots.ts:30 ConditionalExpression',
  ]),

  // --- storage
  group('storage-partial-uploads', ['src/storage/partial-uploads.ts'], ['unit/storage/partial-uploads.test.ts'], [
    // Mapped again in the twenty-first session (the list had gone stale: `mutate-all.js --only storage-partial-uploads`).
    // `if (fd === undefined) throw mismatch(…)` skipped: assertOpenedAt(undefined) throws, and the catch throws the same mismatch.
    'src/storage/partial-uploads.ts:269:9 ConditionalExpression → false',
    // ids(): `/\.json$/` → `/\.json/`: ids are 64 hex digits, ".json" only ever ends a manifest's name.
    'src/storage/partial-uploads.ts:417:61 Regex → /\\.json/',
    // `parsed?.name` → `parsed.name`: JSON "null" then throws a TypeError, which the catch below turns into the same undefined.
    'src/storage/partial-uploads.ts:429:19 OptionalChaining → parsed.name',
    // The catch block emptied: the function then returns undefined all the same.
    'src/storage/partial-uploads.ts:430:11 BlockStatement → {}',
  ]),
  group('storage-local-staged-write', ['src/storage/local-staged-write.ts'], ['unit/storage/local-staged-write.test.ts', 'unit/storage/local-staged-write-faults.test.ts'], [
    // Judged again in the eighteenth and twenty-first sessions (the lines had moved; same mutants as before).
    // createWriteStream('', { fd }): with a descriptor the path is not used.
    'src/storage/local-staged-write.ts:117 StringLiteral',
    // `if (this.failure) throw this.failure` before endStream: endStream rejects with the same failure.
    'src/storage/local-staged-write.ts:151 ConditionalExpression',
    // rememberDigest of a file not published: a cache record for a name whose file is not that one is never read
    // (digest records are checked against size, mtime and inode).
    'src/storage/local-staged-write.ts:190:11 ConditionalExpression → true',
    // A small file's digest in a sidecar too: the digest log is read first; the sidecar is a cache.
    'src/storage/local-staged-write.ts:200 ConditionalExpression',
    'src/storage/local-staged-write.ts:200 EqualityOperator',
    // `this.settled = true` in abort(): a second abort or a commit after it fails on the destroyed sink all the same.
    'src/storage/local-staged-write.ts:235 BooleanLiteral',
  ]),
  group('storage-staging-area', ['src/storage/staging-area.ts'], ['unit/storage/staging-area.test.ts'], [
    'src/storage/staging-area.ts:29 ArrowFunction',
    'src/storage/staging-area.ts:36 StringLiteral',
  ]),
  group('storage-local-small-staged-write', ['src/storage/local-small-staged-write.ts'], ['unit/storage/local-small-staged-write.test.ts', 'unit/storage/small-commits-not-durable.test.ts'], [
    'src/storage/local-small-staged-write.ts:64 ArithmeticOperator',
    'src/storage/local-small-staged-write.ts:90 StringLiteral',
    // `measureReplaced && replaced === undefined`, its second half → true: with a quota the worker then measures the replaced file
    // again, under the same lock as the measurement just made, and its answer is overridden by that one (line 82). A stat more, no other change.
    'src/storage/local-small-staged-write.ts:105:104 ConditionalExpression → true',
  ]),
  group('storage-digest-log', ['src/storage/digest-log.ts'], ['unit/storage/digest-log.test.ts', 'unit/storage/digest-log-memory.test.ts', 'unit/storage/digest-log-survivors.test.ts'], [
    // readTail: `size <= cached.bytes` → `<` differs only at size = bytes, a zero-length tail: nothing is read, `end` is 0.
    'src/storage/digest-log.ts:100:33 EqualityOperator → size < cached.bytes',
    // `if (end === 0) return` → never: applying '' adds no record and `cached.bytes += 0` changes nothing.
    'src/storage/digest-log.ts:105:11 ConditionalExpression → false',
  ]),
  group('storage-digest-index', ['src/storage/digest-index.ts'], ['unit/storage/digest-index-records.test.ts', 'unit/storage/digest-index.test.ts', 'unit/storage/digest-index-survivors.test.ts', 'unit/storage/digest-log-growth.test.ts'], [
    // remember(): the header is read only once the log is past COMPACT_FROM_BYTES; read always (→ true), or also at exactly
    // that size (`>=`), its answer changes nothing: grownForCompaction is false at or below COMPACT_FROM_BYTES whatever the base.
    'src/storage/digest-index.ts:170:72 ConditionalExpression → true',
    'src/storage/digest-index.ts:170:72 EqualityOperator → now >= COMPACT_FROM_BYTES',
    // The catch block of read() emptied: the function then falls off its end and returns undefined all the same.
    'src/storage/digest-index.ts:108 BlockStatement',
  ]),
  group('storage-root-paths', ['src/storage/root-paths.ts'], ['unit/storage/root-paths.test.ts', 'unit/storage/root-paths-survivors.test.ts'], [
    // pathOf: where the separator is '/' (every system the server runs on) join gives what the concatenation gives;
    // the test compares the two for every kind of name. The join branch is for other separators.
    'src/storage/root-paths.ts:40 ConditionalExpression',
    'src/storage/root-paths.ts:40 EqualityOperator',
    'src/storage/root-paths.ts:40 StringLiteral',
    // Judged again in the eighteenth session.
    // `jail === '' ? realRoot : join(realRoot, ...jail.split('/'))`: join(realRoot, '') is realRoot.
    'src/storage/root-paths.ts:53 ConditionalExpression',
    'src/storage/root-paths.ts:53 StringLiteral',
    'src/storage/root-paths.ts:95 ConditionalExpression',
    'src/storage/root-paths.ts:45 ConditionalExpression',
    'src/storage/root-paths.ts:45 StringLiteral',
    'src/storage/root-paths.ts:95 StringLiteral',
    // `rel === '' || …`: '' passes the other three tests too.
    'src/storage/root-paths.ts:54 ConditionalExpression',
    'src/storage/root-paths.ts:54 StringLiteral',
    // Remembering an undefined folder: recentCheck then answers undefined, which is "not remembered".
    'src/storage/root-paths.ts:69:9 ConditionalExpression → true',
    // `dirname(path) === path`: the walk up stops at the root first (`path === this.realRoot`).
    'src/storage/root-paths.ts:108:84 ConditionalExpression → false',
    // Clearing the remembered checks at 10,000 rather than 10,001: a bound, either way.
    'src/storage/root-paths.ts:164 EqualityOperator',
    // `missing === ''` → true: the ancestor found is a folder whenever something is missing below it, or the
    // loop's opened-folder open fails with the same NAME_CONFLICT.
    'src/storage/root-paths.ts:206:11 ConditionalExpression → true',
    // After a successful mkdir: `already` undefined or true, or `already ||` → only an extra lstat of a folder just made.
    'src/storage/root-paths.ts:213:50 ArrowFunction → () => undefined',
    'src/storage/root-paths.ts:213:56 BooleanLiteral → true',
    'src/storage/root-paths.ts:214:15 LogicalOperator',
    // 'EEXIST' never reaches the catch (mkdir's EEXIST is handled where it happens): its test, false or never true.
    'src/storage/root-paths.ts:221:11 ConditionalExpression → false',
    'src/storage/root-paths.ts:221:20 StringLiteral → ""',
    // The words of errors made here to be mapped (ENOTDIR → NAME_CONFLICT): never shown.
    'src/storage/root-paths.ts:206:94 StringLiteral → ``',
    'src/storage/root-paths.ts:214:92 StringLiteral → ``',
  ]),
  group('storage-local-file-ops', ['src/storage/local-file-ops.ts'], ['unit/storage/local-file-ops.test.ts', 'unit/storage/local-file-ops-not-durable.test.ts', 'unit/storage/local-fs-storage-edges.test.ts'], [
    // Judged again in the eighteenth session.
    // entry(): `folder === undefined ? undefined : look` → the look of a missing folder fails and is caught the same.
    'src/storage/local-file-ops.ts:49:14 ConditionalExpression → false',
    // STAT hashing a large file whose digest is unknown: the same digest, at the cost of a read.
    'src/storage/local-file-ops.ts:67:9 ConditionalExpression → true',
    // Forgetting the sidecar of a deleted or renamed small file: it has none.
    'src/storage/local-file-ops.ts:95 ConditionalExpression',
    'src/storage/local-file-ops.ts:95 EqualityOperator',
    'src/storage/local-file-ops.ts:178 ConditionalExpression',
    'src/storage/local-file-ops.ts:178 EqualityOperator',
    // carryDigests remembering an undefined digest: nothing a lookup takes is written (a test shows none appears).
    'src/storage/local-file-ops.ts:176:11 ConditionalExpression → true',
    // MKDIR's EEXIST → EXISTS: storageError maps EEXIST to EXISTS with the same words.
    'src/storage/local-file-ops.ts:197 ConditionalExpression',
    'src/storage/local-file-ops.ts:197 StringLiteral',
    // Twenty-second session: the action's words of two storageError calls that only ever map a folder on
    // the way that is a link now (isLinkOnTheWay), which storageError tells as outsideTheRoot, without
    // them; entry()'s second look fails otherwise only with RxferErrors, which it passes unchanged.
    'src/storage/local-file-ops.ts:52 StringLiteral',
    'src/storage/local-file-ops.ts:123 StringLiteral',
  ]),
  group('storage-local-listing', ['src/storage/local-listing.ts'], ['unit/storage/local-listing.test.ts'], [
    'src/storage/local-listing.ts:64 EqualityOperator',
    'src/storage/local-listing.ts:64 ConditionalExpression',
    'src/storage/local-listing.ts:78 ConditionalExpression',
    'src/storage/local-listing.ts:81 ConditionalExpression',
    'src/storage/local-listing.ts:81 EqualityOperator',
    'src/storage/local-listing.ts:81 BooleanLiteral',
    'src/storage/local-listing.ts:83 EqualityOperator',
    'src/storage/local-listing.ts:108 ObjectLiteral',
    'src/storage/local-listing.ts:108 BooleanLiteral',
    'src/storage/local-listing.ts:109 BlockStatement',
  ]),
  group('storage-sorted-folders', ['src/storage/sorted-folders.ts'], ['unit/storage/sorted-folders.test.ts', 'unit/storage/sorted-folders-rules.test.ts'], [
    'src/storage/sorted-folders.ts:5 ConditionalExpression',
    'src/storage/sorted-folders.ts:5 EqualityOperator',
    'src/storage/sorted-folders.ts:56 ConditionalExpression',
    'src/storage/sorted-folders.ts:65 EqualityOperator',
  ]),
  group('storage-storage-errors', ['src/storage/storage-errors.ts'], ['unit/storage/storage-errors.test.ts', 'regressions/server-folder-swapped.test.ts'], [
    // `?.message ?? ''`: an error without a message; the pattern then matches neither '' nor any other text without "CODE: ".
    'src/storage/storage-errors.ts:95 OptionalChaining',
    'src/storage/storage-errors.ts:95 StringLiteral',
  ]),
  // Not listed (not killed, not equivalent: test/MUTATION.md): small-commits.ts:146 and :147 OptionalChaining (a reply for an id no
  // longer pending).
  group('storage-small-commits', ['src/storage/small-commits.ts'], [
    'unit/storage/small-commits.test.ts',
    'unit/storage/small-commits-worker.test.ts',
    'unit/storage/small-commits-idle-worker.test.ts',
    'unit/storage/small-commits-process-life.test.ts',
    'unit/storage/small-commits-survivors.test.ts',
    'unit/storage/small-commits-not-durable.test.ts',
    'unit/storage/digest-log-growth.test.ts',
  ], [
    // inPlace: the size test is a saving (bytes of another size never compare equal), and the mtime bound's `>=`/`>`
    // differ only for a file written exactly a second before the commit was asked for.
    'src/storage/small-commits.ts:66 ConditionalExpression',
    'src/storage/small-commits.ts:66 EqualityOperator',
    // Judged again in the eighteenth session (the lines had moved).
    // The idle test `pending.size === 0 && queue.length === 0 && …`: `queue.length === 0` → true; every queued id is pending too.
    'src/storage/small-commits.ts:229:38 ConditionalExpression → true',
    // close(): `queue.length > 0` → true (or >= 0) waits one setImmediate with nothing queued too; a turn later, the same close.
    'src/storage/small-commits.ts:188 ConditionalExpression',
    'src/storage/small-commits.ts:188 EqualityOperator',
    // close()'s listeners taken off by event name ('' takes off none): the worker is terminated right after.
    'src/storage/small-commits.ts:196 StringLiteral',
    // Ids counted down instead of up: still unique.
    'src/storage/small-commits.ts:136 UpdateOperator',
    // A flush scheduled for every commit, not only the first of a turn: the later ones find the queue empty
    // and post an empty batch, which the worker answers with no replies.
    'src/storage/small-commits.ts:141 ConditionalExpression',
    // The digest log's path looked up again each time, or the cache cleared at 1,023: a cache either way.
    'src/storage/small-commits.ts:167 ConditionalExpression',
    'src/storage/small-commits.ts:168 ConditionalExpression',
    'src/storage/small-commits.ts:168 EqualityOperator',
    // stop()'s guard: its idle timer is set only once nothing is pending, queued or compacting, and every
    // commit clears it first (one thread: no commit can arrive between the timer firing and stop running).
    'src/storage/small-commits.ts:209 ConditionalExpression',
    'src/storage/small-commits.ts:209 LogicalOperator',
    // The worker's fault list (tests only) `?? []` → a folder named "Stryker was here", which no commit uses.
    'src/storage/small-commits.ts:220:126 ArrayDeclaration → ["Stryker was here"]',
  ], MOSTLY_WAITING),
  // The opened-folder checks (hostile passes i–k): every look and act inside the folder that was checked. The descriptor
  // checks themselves (fd-paths.js) are plain JavaScript shared with the workers, outside Stryker's scope.
  group('storage-opened-paths', ['src/storage/opened-paths.ts'], ['unit/storage/opened-paths.test.ts', 'regressions/hostile-2026-12-05k-looks-by-path.test.ts', 'unit/storage/local-file-ops.test.ts'], [
    // `if (!CAN_CHECK_OPENED)`: the branches for a system without /proc/self/fd, never taken on Linux (where the tests run).
    // (Lines mapped again in the twenty-first session: lookInOpenedFolderSync is gone, openServerFolder came.)
    'src/storage/opened-paths.ts:97 ConditionalExpression',
    'src/storage/opened-paths.ts:97 ArrowFunction',
    'src/storage/opened-paths.ts:144:7 ConditionalExpression → false',
    'src/storage/opened-paths.ts:144 ObjectLiteral',
    'src/storage/opened-paths.ts:144 ArrowFunction',
    'src/storage/opened-paths.ts:222 ConditionalExpression',
    'src/storage/opened-paths.ts:222 ObjectLiteral',
    // linkOnTheWay without `.slice(1)`: the first segment is '' and its path '/', then '//a', '//a/b': the same lstats.
    'src/storage/opened-paths.ts:51:25 MethodExpression → realPath.split(\'/\')',
    // openFolderForWalk: a readlink of /proc/self/fd/<n> for a descriptor just opened does not fail.
    'src/storage/opened-paths.ts:230 BlockStatement',
  ]),
  group('storage-local-fs', ['src/storage/local-fs.storage.ts', 'src/storage/read-small-file.ts'], ['unit/storage/local-fs-storage.test.ts', 'unit/storage/local-fs-storage-edges.test.ts', 'unit/storage/local-file-ops-not-durable.test.ts', 'unit/storage/digest-log-growth.test.ts', 'unit/storage/small-reads.test.ts'], [
    // Judged again in the eighteenth session.
    // The action word in storageError calls whose errors never reach the words that use it (ENOENT is
    // "nothing there" before them): sizeOf's and the early look's.
    'src/storage/local-fs.storage.ts:117:134 StringLiteral → ""',
    'src/storage/local-fs.storage.ts:306:29 StringLiteral → ""',
    // A resume offset beyond the file: matchingPrefix answers 0 for it too.
    'src/storage/local-fs.storage.ts:156:30 ConditionalExpression → true',
    // `prefix === '' ? realRoot : pathOf(…)`: pathOf('') is realRoot; realOrMissing(realRoot) is realRoot.
    'src/storage/local-fs.storage.ts:237 ConditionalExpression',
    'src/storage/local-fs.storage.ts:237 StringLiteral',
    'src/storage/local-fs.storage.ts:256 ConditionalExpression',
    'src/storage/local-fs.storage.ts:256 StringLiteral',
    'src/storage/local-fs.storage.ts:259:18 ConditionalExpression → false',
    'src/storage/local-fs.storage.ts:259:29 StringLiteral → "Stryker was here!"',
    // list(): a missing folder's `real === undefined` → walking undefined finds nothing, as the early return says.
    'src/storage/local-fs.storage.ts:241:9 ConditionalExpression → false',
    // folderBytes(undefined): its readdir fails and counts 0, as a missing folder does.
    'src/storage/local-fs.storage.ts:260:50 ConditionalExpression → false',
    // readSmallFile: reading until `length >= body.length` or `>`: a read of 0 bytes at the end finishes the same.
    'src/storage/read-small-file.ts:55 ConditionalExpression',
    'src/storage/read-small-file.ts:55 EqualityOperator',
  ]),
  group('storage-name-locks', ['src/storage/name-locks.ts'], ['promises/name-locks.test.ts'], [
    // foldersAbove: a list that starts with a junk folder, or '' found as a folder above a relative path (indexOf('') is 0),
    // adds keys no lock the server takes ever names: its paths are absolute, so '' is above every one of them already.
    'src/storage/name-locks.ts:15 ArrayDeclaration',
    'src/storage/name-locks.ts:16 StringLiteral',
    // `if (earlier.size > 0) await Promise.all(…)`: awaiting an empty Promise.all is a turn later, nothing else.
    'src/storage/name-locks.ts:78 ConditionalExpression',
    'src/storage/name-locks.ts:78 EqualityOperator',
    // `if (this.inProgress === 0) return found`: a saving; the lookups it skips find nothing when nothing is held.
    'src/storage/name-locks.ts:89 ConditionalExpression',
  ]),

  // --- client: what happens before a download's name changes (staging, fsync, size check, resume lock)
  // Local failures in words, and a download's folder fsync after the rename (NOT_DURABLE, or let through where folders cannot be synced).
  group('client-local-io', ['src/client/local-io.ts'], ['unit/client/local-io.test.ts', 'unit/client/small-staging-file.test.ts', 'unit/client/staging-file.test.ts', 'client/download-durable.test.ts', 'regressions/issue-14-client-disk-full.test.ts']),
  group('client-staging-resume', ['src/client/staging-file.ts', 'src/client/resume-lock.ts'], ['unit/client/staging-file.test.ts', 'unit/client/resume-lock.test.ts'], [
    // The path still names the verified file: the same inode number on another device would need a mount
    // swapped in under the folder mid-download; the inode test alone catches every replacement tried.
    'src/client/staging-file.ts:252 ConditionalExpression',
    // shortened's fast path (a name of at most 53 units is at most 159 bytes): without it the count gives the same name;
    // and `<` for `<=`: name.length * 3 is never 160, so the two agree.
    'src/client/staging-file.ts:350 ConditionalExpression',
    'src/client/staging-file.ts:350 EqualityOperator',
    'src/client/resume-lock.ts:61 EqualityOperator',
    'src/client/resume-lock.ts:114 StringLiteral',
    'src/client/resume-lock.ts:115 BlockStatement',
    'src/client/resume-lock.ts:116 StringLiteral',
    'src/client/resume-lock.ts:123 BlockStatement',
    'src/client/staging-file.ts:50 ObjectLiteral',
    'src/client/staging-file.ts:50 BooleanLiteral',
    'src/client/staging-file.ts:125 ConditionalExpression',
    'src/client/staging-file.ts:125 EqualityOperator',
    'src/client/staging-file.ts:129 ConditionalExpression',
    'src/client/staging-file.ts:129 StringLiteral',
    'src/client/staging-file.ts:215 BlockStatement',
    'src/client/staging-file.ts:276 ConditionalExpression',
    'src/client/staging-file.ts:279 StringLiteral',
    'src/client/staging-file.ts:295 ConditionalExpression',
    'src/client/staging-file.ts:296 ArrowFunction',
    'src/client/staging-file.ts:299 OptionalChaining',
    'src/client/staging-file.ts:328 StringLiteral',
  ]),
  group('client-small-staging-identical', ['src/client/small-staging-file.ts', 'src/client/identical.ts'], ['unit/client/small-staging-file.test.ts', 'unit/client/identical.test.ts'], [
    'src/client/small-staging-file.ts:54 BlockStatement',
    'src/client/small-staging-file.ts:60 ConditionalExpression',
    'src/client/small-staging-file.ts:85 ConditionalExpression',
    'src/client/small-staging-file.ts:100 BlockStatement',
    'src/client/identical.ts:29 ConditionalExpression',
    'src/client/identical.ts:30 ConditionalExpression',
    'src/client/identical.ts:30 EqualityOperator',
    'src/client/identical.ts:38 ConditionalExpression',
    'src/client/identical.ts:40 ConditionalExpression',
    'src/client/identical.ts:54 ConditionalExpression',
    'src/client/identical.ts:55 ConditionalExpression',
    'src/client/identical.ts:55 EqualityOperator',
    'src/client/identical.ts:57 ConditionalExpression',
    // `hash?.hex()` → `hash.hex()`: with no hash the TypeError is caught and answers false, as undefined === digest does.
    'src/client/identical.ts:65 OptionalChaining',
    'src/client/identical.ts:81 ArrayDeclaration',
    'src/client/identical.ts:81 BooleanLiteral',
    'src/client/identical.ts:90 MethodExpression',
  ]),

  // --- pipeline
  group('pipeline-await-in-order', ['src/pipeline/await-in-order.ts'], ['unit/pipeline/await-in-order.test.ts'], []),
  group('pipeline-concat-async', ['src/pipeline/concat-async.ts'], ['unit/pipeline/concat-async.test.ts'], [
    'src/pipeline/concat-async.ts:58 ConditionalExpression',
    'src/pipeline/concat-async.ts:64 ConditionalExpression',
    'src/pipeline/concat-async.ts:69 ConditionalExpression',
  ]),
  group('pipeline-compose-stages', ['src/pipeline/compose-stages.ts'], ['unit/pipeline/compose-stages.test.ts'], []),
  group('pipeline-accumulate-data', ['src/pipeline/stages/accumulate-data.stage.ts'], ['unit/pipeline/accumulate-data.test.ts'], [
    'src/pipeline/stages/accumulate-data.stage.ts:15 StringLiteral',
  ]),
  group('pipeline-admit-requests', ['src/pipeline/stages/admit-requests.stage.ts'], ['unit/pipeline/admit-requests.test.ts'], [
    'src/pipeline/stages/admit-requests.stage.ts:19 StringLiteral',
  ]),
  group('pipeline-authenticate', ['src/pipeline/stages/authenticate.stage.ts'], ['unit/pipeline/authenticate.test.ts'], [
    'src/pipeline/stages/authenticate.stage.ts:24 StringLiteral',
    'src/pipeline/stages/authenticate.stage.ts:66 StringLiteral',
  ]),
  group('pipeline-emit-ack', ['src/pipeline/stages/emit-ack.stage.ts'], ['unit/pipeline/emit-ack.test.ts', 'unit/pipeline/emit-ack-survivors.test.ts'], [
    'src/pipeline/stages/emit-ack.stage.ts:29 StringLiteral',
  ]),
  group('pipeline-file-ops', ['src/pipeline/stages/file-ops.stage.ts'], ['unit/pipeline/file-ops.test.ts'], [
    'src/pipeline/stages/file-ops.stage.ts:28 StringLiteral',
    'src/pipeline/stages/file-ops.stage.ts:58 MethodExpression',
  ]),
  group('pipeline-parse-command', ['src/pipeline/stages/parse-command.stage.ts'], ['unit/pipeline/parse-command.test.ts'], [
    'src/pipeline/stages/parse-command.stage.ts:15 LogicalOperator',
    'src/pipeline/stages/parse-command.stage.ts:39 StringLiteral',
  ]),
  group('pipeline-resolve-filename', ['src/pipeline/stages/resolve-filename.stage.ts', 'src/pipeline/upload-write-options.ts', 'src/pipeline/refusal.ts'], ['unit/pipeline/resolve-filename.test.ts', 'unit/pipeline/resolve-filename-late.test.ts', 'unit/pipeline/resolve-filename-survivors.test.ts'], [
    // `transfer.quota?.admit` → `.admit`: the reservation is set before beginWrite (UPLOAD) or the commit (a BATCH file),
    // and a commit only follows an accepted upload.
    'src/pipeline/upload-write-options.ts:19:78 OptionalChaining → transfer.quota.admit',
    'src/pipeline/stages/resolve-filename.stage.ts:36 StringLiteral',
    // resolveNow's `if (transfer.released) return []` (after the turn wait, after the reservation): what it returns
    // is dropped by resolve(), which gives back and answers nothing for a released transfer; the return stops the work.
    'src/pipeline/stages/resolve-filename.stage.ts:158:37 ArrayDeclaration → ["Stryker was here"]',
    'src/pipeline/stages/resolve-filename.stage.ts:187:39 ArrayDeclaration → ["Stryker was here"]',
    // openStaging's catch: `isStorageHang(err)` → true: any other failure means the call rejected, so `opening.then(…,
    // settled)` settles the change one tick later instead of at once; nothing waits on it in between.
    'src/pipeline/stages/resolve-filename.stage.ts:143:11 ConditionalExpression → true',
    // list() is only called when the verb is LIST (apply; Transfer.command is readonly): the guard narrows the type, never returns.
    'src/pipeline/stages/resolve-filename.stage.ts:77 ArrayDeclaration',
    'src/pipeline/stages/resolve-filename.stage.ts:77 ConditionalExpression',
    // `raw2 === undefined ? undefined : …` → false: with raw2 undefined, afterFolder is false, so the other branch gives undefined too.
    'src/pipeline/stages/resolve-filename.stage.ts:85 ConditionalExpression',
  ]),
  group('pipeline-write-file', ['src/pipeline/stages/write-file.stage.ts'], ['unit/pipeline/write-file.test.ts'], [
    'src/pipeline/stages/write-file.stage.ts:27 StringLiteral',
  ]),
  // BATCH (issue 20): each file stored as an UPLOAD would be; the digest check and the counted commit it shares with write-file.
  group('pipeline-store-batch', ['src/pipeline/stages/store-batch.stage.ts', 'src/pipeline/as-declared.ts', 'src/pipeline/counted-commit.ts'], [
    'integration/batch.test.ts',
    'promises/batch-limits.test.ts',
    'reliability/batch-faults.test.ts',
    'unit/pipeline/write-file.test.ts',
  ], []),

  // --- session
  group('session-request-budget', ['src/session/request-budget.ts'], ['unit/session/request-budget.test.ts'], [
    'src/session/request-budget.ts:50 ConditionalExpression',
    'src/session/request-budget.ts:56 ConditionalExpression',
  ]),
  group('session-flow-control', ['src/session/flow-control.ts'], ['unit/session/flow-control.test.ts'], []),
  group('session-stall-guard', ['src/session/stall-guard.ts'], ['unit/session/stall-guard.test.ts'], []),
  group('session-storage-deadline', ['src/session/storage-deadline.ts'], ['unit/session/storage-deadline.test.ts'], [
    // `discardLate?.(late)` → `discardLate(late)`: without one, the TypeError is thrown inside .then and swallowed by the .catch right after it.
    'src/session/storage-deadline.ts:19 OptionalChaining',
  ]),
  group('session-session-context', ['src/session/session-context.ts'], ['unit/session/session-context.test.ts', 'integration/batch.test.ts'], [
    'src/session/session-context.ts:96 ArrayDeclaration',
    'src/session/session-context.ts:104 StringLiteral',
    'src/session/session-context.ts:105 ConditionalExpression',
    'src/session/session-context.ts:105 StringLiteral',
    'src/session/session-context.ts:181 ConditionalExpression',
    // The scan's `name !== ''` for a root LIST (→ true, or '' → another string): the root's own claim is waited for just above.
    'src/session/session-context.ts:110:32 ConditionalExpression → true',
    'src/session/session-context.ts:110:41 StringLiteral → "Stryker was here!"',
  ]),
  group('session-session-observer', ['src/session/session-observer.ts'], ['unit/session/session-observer.test.ts'], []),
  group('session-transfer', ['src/session/transfer.ts'], ['unit/session/transfer.test.ts'], []),
  group('session-socket-source', ['src/session/socket-source.ts'], ['unit/session/socket-source.test.ts'], []),
  group('session-write-replies', ['src/session/write-replies.ts'], ['unit/session/write-replies.test.ts'], [
    'src/session/write-replies.ts:32 ConditionalExpression',
    'src/session/write-replies.ts:61 ConditionalExpression',
  ], MOSTLY_WAITING),
  group('session-send-body', ['src/session/send-body.ts'], ['unit/session/send-body.test.ts'], [
    'src/session/send-body.ts:56 ConditionalExpression',
    'src/session/send-body.ts:56 LogicalOperator',
    'src/session/send-body.ts:56 EqualityOperator',
    'src/session/send-body.ts:101 ConditionalExpression',
    'src/session/send-body.ts:101 LogicalOperator',
    'src/session/send-body.ts:101 EqualityOperator',
  ], {
    // Half its mutants hang a download (a body that never ends): found at 1.5 s instead of 5 s plus twice the tests' time,
    // the group takes 3.3 min instead of 5.1, every mutant with the same outcome (test/MUTATION.md, twelfth session).
    // Not for every group: small-commits' killed mutants then end as timeouts, each restarting Jest, and it took longer.
    timeoutMS: 1500,
    ...MOSTLY_WAITING,
  }),
  group('session-connection-actor', ['src/session/connection-actor.ts'], ['unit/session/connection-actor.test.ts', 'unit/session/connection-actor-close.test.ts', 'unit/session/connection-actor-survivors.test.ts'], [
    'src/session/connection-actor.ts:63 ArrowFunction',
    'src/session/connection-actor.ts:152 ConditionalExpression',
  ], MOSTLY_WAITING),

  // --- client tree code (put -r, get -r, ls): its groups live in their own file
  ...require('./plan-client-tree')(group),

  // --- io (the exact-write loop every staging file goes through)
  // When an fsync is synchronous and when pooled (the client's downloads, the server's small-commit worker).
  group('io-fsync-pace', ['src/io/fsync-pace.js', 'src/io/quick-fsync.ts', 'src/io/folder-sync.ts'], ['unit/io/fsync-pace.test.ts', 'unit/io/quick-fsync.test.ts', 'unit/io/folder-sync.test.ts'], []),
  group('io-exact-writes', ['src/io/exact-writes.ts'], ['promises/exact-writes.test.ts'], [
    'src/io/exact-writes.ts:28 ConditionalExpression',
    'src/io/exact-writes.ts:28 EqualityOperator',
  ]),
];
