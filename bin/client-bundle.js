'use strict';
// Which bundle of the client commands is current (scripts/bundle-cli.js makes it): bin/rxfer.js runs
// it, the tests' build helper makes it again when it is not, and the benchmark says which one ran.
// One rule for the three of them.
const { readFileSync, statSync } = require('node:fs');

/** A regular file's modification time; undefined for none (missing, a folder, a dangling link). */
const fileTime = (path) => {
  const stats = statSync(path, { throwIfNoEntry: false });
  return stats?.isFile() ? stats.mtimeMs : undefined;
};

/**
 * The path of `project`'s bundle if it holds the code that dist/ and node_modules/ hold now, else
 * undefined. In a checkout (src/ beside dist/), only while none of the files it was made from (listed
 * beside it) is newer: tsc -w or --incremental rewrites only the files that changed, and the bundle
 * would run the code before the change. An installed package has no src/, and all its files come
 * from one build (npm gives them the times of their unpacking, in any order): its bundle is current.
 */
const currentBundle = (project) => {
  const bundle = `${project}/dist/cli/client-bundle.js`;
  const madeAt = fileTime(bundle);
  if (madeAt === undefined) return undefined;
  if (statSync(`${project}/src`, { throwIfNoEntry: false }) === undefined) return bundle;
  try {
    const { inputs } = JSON.parse(readFileSync(`${project}/dist/cli/client-bundle.json`, 'utf8'));
    return inputs.every((input) => (fileTime(`${project}/${input}`) ?? Infinity) <= madeAt) ? bundle : undefined;
  } catch {
    return undefined;
  }
};

module.exports = { currentBundle };
