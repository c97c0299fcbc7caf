'use strict';
/** The mutation scope: the files stryker.config.json's `mutate` globs take in. */
const { readdirSync } = require('node:fs');
const { join, relative } = require('node:path');
const { ROOT, baseConfig } = require('./stryker-run');

/** A glob of `mutate` as a RegExp (`**` any folders, `*` within one). */
const globToRegExp = (glob) =>
  new RegExp(
    '^' +
      glob
        .split(/(\*\*\/|\*\*|\*)/)
        .map((part) => (part === '**/' ? '(?:.*/)?' : part === '**' ? '.*' : part === '*' ? '[^/]*' : part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')))
        .join('') +
      '$',
  );

const { mutate } = baseConfig();
const include = mutate.filter((glob) => !glob.startsWith('!')).map(globToRegExp);
const exclude = mutate.filter((glob) => glob.startsWith('!')).map((glob) => globToRegExp(glob.slice(1)));

/** Whether a path relative to the project root is in the scope. */
const inScope = (path) => include.some((re) => re.test(path)) && !exclude.some((re) => re.test(path));

/** Every file of src/ in the scope, sorted. */
const scopeFiles = () => {
  const files = [];
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else files.push(relative(ROOT, path));
    }
  };
  walk(join(ROOT, 'src'));
  return files.filter(inScope).sort();
};

module.exports = { inScope, scopeFiles };
