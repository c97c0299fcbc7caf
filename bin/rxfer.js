#!/bin/sh
':' //; [ "$1" = serve ] && exec node --no-concurrent-sweeping --expose-gc "$0" "$@"; _rx_t=; for _rx_a; do case $_rx_a in --tls|--ca|--ca=*) _rx_t=1;; esac; done; [ -z "$_rx_t${RXFER_TLS+1}${RXFER_CA+1}" ] && unset NODE_EXTRA_CA_CERTS; unset _rx_t _rx_a; exec node --no-concurrent-sweeping --expose-gc --max-opt=1 "$0" "$@"
'use strict';
// The two lines above are read by sh and by node alike. sh (running `rxfer` as installed) sees a
// no-op, then replaces itself with node and the flags below, on this same file; node sees a string
// and a comment. Not `#!/usr/bin/env -S node …`: BusyBox's env (Alpine) has no -S.
// These are V8 flags, so they can only be given on node's command line (here, in `npm start`, and
// wherever the benchmark starts bin/rxfer.js, which reads them from the line above).
// --expose-gc: a lone transfer collects its dead socket buffers every 8 MiB instead of V8's 32 MiB
// (src/io/transient-buffers.ts): the server's peak for a 1 GiB transfer 110–114 → 92–95 MiB.
// --no-concurrent-sweeping: V8's background sweeper threads contend with the transfer itself on a
// small machine. Measured on 2 cores after a burst of 2,000 small uploads, every later 1 GiB upload
// cost the server 1.76–2.01 s of CPU instead of 1.38–1.55 (554–629 against 671–752 MiB/s); with the
// flag 1.28–1.38 s (751–812 MiB/s); small files unchanged (bench/findings.md, "V8's sweeper threads").
// --max-opt=1, for every command but `serve`: a CLI command lives a second or two, too short for
// V8's optimizing compiler (TurboFan) to repay itself. It compiled the client's hot functions on
// background threads for ≈ 35 % of the CPU of a `put -r` of 2,000 small files (perf); stopping at
// the baseline tier (Sparkplug) cut the client's CPU by ≈ 30 % for `put -r`, its re-run and `get -r`,
// and big files lose nothing (their time is SHA-256 and syscalls, native code either way). The
// server runs for days, so it keeps every tier. Only `serve` as the first argument is recognised
// (as every deploy file and `npm start` write it); a server started otherwise is only slower.
// NODE_EXTRA_CA_CERTS, for a client command that makes no TLS connection (no --tls or --ca on its
// command line, no RXFER_TLS or RXFER_CA set, even empty: commander turns TLS on for a variable that is
// merely defined): Node reads and parses every certificate of that file when
// it starts, whether TLS is used or not. A distribution's bundle (as set on this benchmark host, and
// in many corporate setups) cost each command ≈ 30 ms of CPU, `rxfer --help` 90–120 ms instead of
// 40–50 (issue 20). Without TLS no certificate is ever looked at, so nothing else changes; with TLS the
// variable is kept, as any node program would. The server reads it once, at start, and keeps it.
// The server overlaps many small files' fs calls (open, fsync, rename…); libuv's default pool of 4
// threads would queue them. Must be set before the first fs call, hence here and not in the server.
if (process.argv[2] === 'serve' && process.env.UV_THREADPOOL_SIZE === undefined) process.env.UV_THREADPOOL_SIZE = '16';
// The CLI is compiled TypeScript (npm ci runs `prepare`, which builds dist/); see src/cli/main.ts.
// Client commands run from one bundled file of it (scripts/bundle-cli.js: ≈ 20 ms less start-up
// each); `serve` and `token`, whose modules are not in the bundle, run from dist/. The word `serve` or
// `token` anywhere on the line is enough for that (a file so named only costs the bundle's gain).
// In a checkout, a bundle older than a file it was made from is not run (client-bundle.js says why).
const { currentBundle } = require('./client-bundle.js');
const project = `${__dirname}/..`;
const serverSide = process.argv.slice(2).some((arg) => arg === 'serve' || arg === 'token');
require((serverSide ? undefined : currentBundle(project)) ?? `${project}/dist/cli/main.js`);
