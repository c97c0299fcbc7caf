import { randomBytes } from 'node:crypto';

/**
 * A corpus of hostile (and hostile-looking but legal) names for the wire. Each entry says what the
 * server must do, decided from docs/PROTOCOL.md ("Names"), not from the implementation:
 *
 * - `invalid`: `ERR NAME_INVALID` for UPLOAD and DOWNLOAD, and nothing is created anywhere;
 * - `allowed`: stored under exactly that (UTF-8) name, strictly inside the user's root;
 * - `either`: legal on the wire but beyond what the file system can take (a 4096-byte name under a
 *   temp root exceeds PATH_MAX): NAME_INVALID, or stored inside the root.
 *
 * Names are bytes because some are not valid UTF-8. A name is one line on the wire, so none contains
 * LF (0x0A; LF is covered by the unit-level properties), and none ends in CR (the decoder drops a CR
 * before the LF, as telnet-style `\r\n` needs); CR in the middle of a name is tested.
 */
export type Expectation = 'invalid' | 'allowed' | 'either';

export interface HostileName {
  readonly group: string;
  readonly label: string;
  readonly bytes: Buffer;
  readonly expect: Expectation;
}

/** A file name no one else uses: traversal names aim at it so that an escape can be searched for. */
export const CANARY = `rxfer-canary-${process.pid}-${randomBytes(4).toString('hex')}`;

const names: HostileName[] = [];
const label = (bytes: Buffer): string => {
  const text = bytes.toString('utf8');
  const shown = Buffer.from(text, 'utf8').equals(bytes) ? JSON.stringify(text) : `bytes ${bytes.toString('hex')}`;
  return shown.length > 70 ? `${shown.slice(0, 60)}… (${bytes.length} bytes)` : shown;
};
const add = (group: string, expect: Expectation, ...items: (string | Buffer | number[])[]): void => {
  for (const item of items) {
    const bytes = Buffer.isBuffer(item) ? item : Array.isArray(item) ? Buffer.from(item) : Buffer.from(item, 'utf8');
    names.push({ group, label: label(bytes), bytes, expect });
  }
};
const raw = (...parts: (string | number[])[]): Buffer =>
  Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(part, 'latin1') : Buffer.from(part))));

// ---- traversal, in many spellings -------------------------------------------------------------
add(
  'traversal',
  'invalid',
  '..',
  '../',
  `../${CANARY}`,
  `../../${CANARY}`,
  `../../../${CANARY}`,
  `${'../'.repeat(24)}${CANARY}`,
  '../../../../../../../../etc/passwd',
  `./../${CANARY}`,
  `a/../../${CANARY}`,
  `a/b/../../../${CANARY}`,
  'a/..',
  'a/../b',
  'x/y/z/../../../..',
  `..//${CANARY}`,
  `.././${CANARY}`,
  '../sentinel/secret.txt',
  '../../sentinel/secret.txt',
  '../storage/x',
  '.',
  './',
  './x',
  'x/.',
  'x/./y',
  '....//',
  `....//${CANARY}`,
  `...//${CANARY}`,
  '...',
  '....',
  `.../${CANARY}`,
  `..../${CANARY}`,
  '.. ',
  ' ..',
  '..\u0009',
  `x/${'../'.repeat(5)}${CANARY}`,
);
// Percent-encodings and other spellings that only a decoder would turn into "..": literal names here.
add(
  'encoded traversal (literal, legal)',
  'allowed',
  '..%2f',
  `..%2f..%2f${CANARY}`,
  '..%2F..%2Fetc%2Fpasswd',
  '%2e%2e%2f%2e%2e%2fetc',
  '%2e%2e/x',
  '..%5c..%5cx',
  '%252e%252e%252f',
  '..%c0%af',
  '..%00',
  '%00',
  '..;',
  '..;b/x',
  '..a',
  'a..b',
  '...a',
);

// ---- backslashes ----------------------------------------------------------------------------
add(
  'backslash',
  'invalid',
  `..\\${CANARY}`,
  `..\\..\\${CANARY}`,
  `a\\..\\..\\${CANARY}`,
  'a\\b',
  '\\',
  '\\x',
  'x\\',
  '\\\\server\\share',
  `\\\\server\\share\\${CANARY}`,
  '\\\\?\\C:\\x',
  '\\\\.\\pipe\\x',
  '\\\\.\\COM1',
  `a/..\\..\\${CANARY}`,
  `..\\/${CANARY}`,
  'x/\\/y',
);

// ---- absolute paths and drive letters -----------------------------------------------------------
add(
  'absolute',
  'invalid',
  '/',
  '/x',
  '/etc/passwd',
  `/${CANARY}`,
  `/tmp/${CANARY}`,
  `//${CANARY}`,
  `///${CANARY}`,
  `/../${CANARY}`,
  '/./x',
  '/dev/null',
  '/proc/self/environ',
);
add('drive letter', 'invalid', 'a:b', 'C:', 'C:\\', 'C:\\Windows\\win.ini', `c:/${CANARY}`, 'C:x', 'z:', `C:..\\${CANARY}`, 'D:/', 'c:');

// ---- NUL and every C0 control (LF excepted: see above), DEL, C1 ------------------------------------
add('NUL', 'invalid', '\u0000', 'a\u0000', '\u0000a', 'a\u0000b', 'x.txt\u0000.jpg', `../\u0000${CANARY}`, `a\u0000/../../${CANARY}`);
for (let code = 0x01; code <= 0x1f; code++) {
  if (code === 0x0a) continue;
  add('C0 control', 'invalid', `a${String.fromCharCode(code)}b`);
}
add('C0 control', 'invalid', '\u0001x', '\u001fx', '\u0009', '\u000d', 'x\u000d/y', '\u0008\u0008\u0008evil');
add('DEL', 'invalid', 'a\u007fb', '\u007f', 'x\u007f');
for (let code = 0x80; code <= 0x9f; code++) add('C1 control', 'invalid', `a${String.fromCharCode(code)}b`);

// ---- terminal escape sequences --------------------------------------------------------------------
add(
  'ANSI/ESC',
  'invalid',
  '\u001b[31mred',
  '\u001b[2J\u001b[H',
  '\u001b]0;pwned\u0007',
  '\u001b]8;;http://evil.example\u0007link\u001b]8;;\u0007',
  '\u001bP+q\u001b\\',
  'x\u001b[1A\u001b[2Ky',
  '\u001b[6n',
  '\u001bc',
  '\u009b31m',
  '\u009d0;title\u009c',
);

// ---- invalid UTF-8 (raw bytes) ----------------------------------------------------------------------
add(
  'invalid UTF-8',
  'invalid',
  [0xff],
  [0xfe, 0xff],
  [0x80],
  [0xbf],
  raw('a', [0xc3]),
  [0xc3, 0x28],
  [0xe2, 0x82],
  [0xe2, 0x28, 0xa1],
  [0xf0, 0x90, 0x28, 0xbc],
  [0xed, 0xa0, 0x80],
  [0xed, 0xbf, 0xbf],
  [0xf4, 0x90, 0x80, 0x80],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
  [0xfc, 0x84, 0x80, 0x80, 0x80, 0x80],
  raw('caf', [0xe9]),
  [0x9b],
  raw('x', [0xc2]),
  raw('a/', [0xff], '/b'),
);
// Overlong encodings of "/", ".", "\" and NUL: a lenient decoder turns them into traversal.
add(
  'overlong UTF-8',
  'invalid',
  [0xc0, 0xaf],
  [0xe0, 0x80, 0xaf],
  [0xf0, 0x80, 0x80, 0xaf],
  [0xc0, 0xae],
  [0xe0, 0x80, 0xae],
  raw('..', [0xc0, 0xaf], CANARY),
  raw([0xc0, 0xae, 0xc0, 0xae, 0xc0, 0xaf], CANARY),
  raw([0xc0, 0xae, 0xc0, 0xae], '/x'),
  raw([0xe0, 0x80, 0xae, 0xe0, 0x80, 0xae, 0xe0, 0x80, 0xaf], CANARY),
  [0xc0, 0x80],
  raw('a', [0xc0, 0x80], 'b'),
  [0xc1, 0x9c],
  raw([0xc0, 0xae, 0xc0, 0xae, 0xc1, 0x9c], CANARY),
);

// ---- Windows device names ------------------------------------------------------------------------
add(
  'Windows device',
  'invalid',
  'CON',
  'con',
  'Con',
  'cOn',
  'PRN',
  'AUX',
  'NUL',
  'nul',
  'COM1',
  'com1',
  'COM9',
  'LPT1',
  'lpt9',
  'COM0',
  'LPT0',
  'CON.txt',
  'con.TXT',
  'nul.tar.gz',
  'NUL.txt',
  'aux.c',
  'prn.log',
  'com1.txt',
  'LPT1.doc',
  'CONIN$',
  'CONOUT$',
  'conin$.txt',
  'COM\u00b9',
  'LPT\u00b2',
  'a/CON',
  'CON/x',
  'x/nul.txt/y',
  'PRN.',
  'AUX ',
);
add('near-miss device names (legal)', 'allowed', 'CONSOLE', 'COM10', 'LPT', 'COM', 'nul_', 'xcon', 'con-fig', 'auxiliary.txt', 'NULL', 'prn2');

// ---- trailing dots and spaces ------------------------------------------------------------------------
add('trailing dot/space', 'invalid', 'a.', 'a..', 'a ', 'a  ', 'a. ', 'a .', 'dir./x', 'dir /x', 'x/y.', 'x/y ', 'file.txt.', 'file.txt ', ' ', '  ', '. ', ' .');

// ---- the server's own files ---------------------------------------------------------------------------
add(
  'reserved .rxfer',
  'invalid',
  '.rxfer',
  '.rxfer/sums/x.json',
  '.rxfer-part-0123456789abcdef',
  '.RXFER',
  '.RxFeR-part-1',
  '.rxferX',
  'a/.rxfer',
  'a/.rxfer-part-deadbeef',
  '.rxfer/x',
);
add('not reserved (legal)', 'allowed', '.rxfe', 'rxfer', 'x.rxfer', '_.rxfer');

// ---- length ------------------------------------------------------------------------------------------
add(
  'too long',
  'invalid',
  'a'.repeat(256),
  '\u00e9'.repeat(128),
  '\u20ac'.repeat(86),
  `x/${'a'.repeat(256)}`,
  `${'a'.repeat(256)}/x`,
  `${'a'.repeat(200)}/`.repeat(21).slice(0, -1),
  'b'.repeat(4097),
  'c'.repeat(10_000),
);
add(
  'long but legal',
  'allowed',
  'a'.repeat(255),
  '\u20ac'.repeat(85),
  `${'d/'.repeat(100)}leaf`,
  Array.from({ length: 15 }, (_, i) => `${String(i).padStart(2, '0')}${'s'.repeat(197)}`).join('/'),
);
// Exactly 4096 bytes is legal on the wire but longer than PATH_MAX once the root is prefixed.
add('at the wire limit', 'either', Array.from({ length: 17 }, (_, i) => `${String(i).padStart(2, '0')}${'L'.repeat(238)}`).join('/').padEnd(4096, 'z'));

// ---- empty segments -----------------------------------------------------------------------------------
add('empty segment', 'invalid', '', '/', 'a//b', 'a/', '//', 'a///b', '/a/', 'a/b/', 'file:///etc/passwd', 'http://evil.example/x');

// ---- names not in Unicode NFC: one name has one spelling (PROTOCOL.md, Names) -------------------------------
add('not NFC', 'invalid', 'e\u0301', 'cafe\u0301.txt', 'di\u0301r/x', '\u212B', '\u2126', '\uF900');

// ---- look-alikes and other legal oddities: stored strictly inside the root, under exactly that name --------
add(
  'look-alike (legal)',
  'allowed',
  '\uff0e\uff0e\uff0f\uff0e\uff0e\uff0fetc',
  '\u2025\uff0fx',
  '\u2024\u2024\u2215x',
  '\u2044etc\u2044passwd',
  '\u2215etc\u2215passwd',
  '\uff3c..\uff3cx',
  '..\uff0fx',
  '\u202etxt.exe',
  'a\u200bb',
  '\ufeffbom',
  '\u00e9',
  '\ud83d\ude00/\ud83d\udd25.txt',
  '\u2102\uff1a',
  '\uff23\uff2f\uff2e',
  'CO\uff2d1',
  '\uff41\uff55\uff58.txt',
  '\u2024',
  '\u3002\u3002',
  'nbsp\u00a0x',
  'a\u2028b',
  '\u0130stanbul',
);
add(
  'shell-ish and hidden (legal)',
  'allowed',
  '~',
  '~root',
  '$HOME',
  '`id`',
  '$(id)',
  ';rm -rf',
  '|x',
  '-rf',
  '--help',
  '*',
  '?',
  '[a]',
  '{a,b}',
  "'quoted'",
  '"dq"',
  '<x>',
  '&x',
  '#x',
  '!x',
  '%n%s',
  '.a',
  '.git/config',
  '.ssh/authorized_keys',
  'x/.htaccess',
  ' leading-space',
  'my file.txt',
);

export const HOSTILE_NAMES: readonly HostileName[] = names;
