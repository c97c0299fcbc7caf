#!/usr/bin/env node
'use strict';
// `node scripts/bundle-cli.js [PROJECT]` — the second half of `npm run build`, after tsc: the
// command-line client (dist/cli/main.js and everything it requires: dist/cli, dist/client, commander,
// cli-progress) bundled into one file, dist/cli/client-bundle.js, which bin/rxfer.js runs for every
// command but `serve` and `token`.
//
// Why (issue 20): a client command is a fresh process, and Node's module loader spent part of each one
// finding, reading and wrapping some 90 files: `rxfer put` of one small file took 159 → 137 ms of CPU
// (perf stat, six alternating runs of ten each), and `put`/`get` of one file 0.94×/0.92× the time
// (ab-commands.js --single, 12 rounds, paired); trees of 2,000 files are within the noise
// (bench/findings.md).
// Nothing else changes: the bundle is the same compiled JavaScript, still loaded lazily module by
// module as it is required (esbuild keeps each module behind its own wrapper), not minified, with
// its names kept for stack traces.
//
// `serve` and `token` stay out, and bin/rxfer.js runs them from dist/: the server's dependencies
// (inversify, pino, prom-client, zod, the S3 client) would make every client command parse megabytes,
// and the two halves must never share a process half bundled, half not (two copies of RxferError
// would each fail the other's `instanceof`). Their modules are marked external below only so that the
// bundle stays small; bin/rxfer.js never lets it reach them.
const fs = require('node:fs');
const path = require('node:path');

const project = path.resolve(process.argv[2] ?? path.join(__dirname, '..'));
// Resolved from the project built (a snapshot of it may link its node_modules: build-ab-pair.sh).
const esbuild = require(require.resolve('esbuild', { paths: [project] }));

const result = esbuild.buildSync({
  absWorkingDir: project,
  entryPoints: ['dist/cli/main.js'],
  outfile: 'dist/cli/client-bundle.js',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  // Read at run time from where they are: the version (package.json) and the server side's commands.
  external: ['../../package.json', './serve.command', './token.command'],
  keepNames: true,
  logLevel: 'warning',
  metafile: true,
  write: false,
});

/**
 * Each file in place by a rename: a command started while this runs finds the old file or the new,
 * never half of one, and a build that fails (a full disk) leaves the old bundle whole.
 */
const writeWhole = (file, contents) => {
  const temp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(temp, contents);
    fs.renameSync(temp, file);
  } catch (err) {
    // The build fails with this error (a bundle not made); nothing half-written stays beside dist/.
    fs.rmSync(temp, { force: true });
    throw err;
  }
};

// What the bundle was made from, beside it: in a checkout, bin/rxfer.js runs the bundle only while
// none of these is newer than it (tsc -w or --incremental rewrites only the files that changed, and
// an npm install the packages it updated).
const inputs = Object.keys(result.metafile.inputs).sort();
const [bundle] = result.outputFiles;
writeWhole(path.join(project, 'dist/cli/client-bundle.json'), `${JSON.stringify({ inputs }, null, 1)}\n`);
writeWhole(bundle.path, bundle.contents);
console.log(`bundled the command-line client: ${inputs.length} modules, ${(bundle.contents.length / 1024).toFixed(0)} KiB in dist/cli/client-bundle.js`);
