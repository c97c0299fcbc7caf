#!/usr/bin/env node
// rxfer in front of S3 (Ceph RGW) against the AWS SDK talking to the same gateway directly (issue 15).
//
//   node bench/s3.js [--size MiB] [--runs N] [--out FILE]     (or: npm run bench -- --s3)
//
// One file (default 1 GiB) goes up and down through `rxfer serve` with storage.kind "s3", and, in the
// same run, alternating, straight from this process to the same gateway with the SDK (multipart with
// the same part size and parts in flight, then a streamed GetObject to a file). It reports medians,
// the ratio rxfer ÷ direct, and the server's peak RSS while it transfers. Every copy is verified
// (size + SHA-256); a wrong byte exits 1. Times are never asserted.
// With S3_ENDPOINT unset it brings up Ceph itself (scripts/ceph/ceph-s3-up.sh) and stops it after.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawn, execFileSync } = require('node:child_process');
const U = require('./lib/util');

const argv = process.argv.slice(2);
const opt = (name, def) => (argv.includes(`--${name}`) ? argv[argv.indexOf(`--${name}`) + 1] : def);
const MiB = U.MiB;
const SIZE = Number(opt('size', 1024)) * MiB;
const RUNS = Number(opt('runs', 2));
const PART = 16 * MiB;
const IN_FLIGHT = 4;
const ROOT = path.join(__dirname, '..');
const OUT = opt('out', path.join(__dirname, 'results', 's3.json'));

const up = () => {
  if (process.env.S3_ENDPOINT) return undefined;
  U.log('S3_ENDPOINT unset: starting Ceph (scripts/ceph/ceph-s3-up.sh)');
  const out = execFileSync(path.join(ROOT, 'scripts/ceph/ceph-s3-up.sh'), { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, CEPH_STORE_BYTES: String(8 * 1024 ** 3) } }).toString();
  for (const line of out.trim().split('\n')) {
    const [key, ...value] = line.split('=');
    process.env[key] = value.join('=');
  }
  return process.env.CEPH_S3_DIR;
};

/** RGW frees deleted data only in its garbage collection (hours later by default): run it now. */
const collectGarbage = () => {
  if (!process.env.CEPH_S3_DIR) return;
  try { execFileSync('radosgw-admin', ['gc', 'process', '--include-all'], { env: { ...process.env, CEPH_CONF: `${process.env.CEPH_S3_DIR}/ceph.conf` }, stdio: 'ignore', timeout: 120000 }); } catch { /* best effort */ }
};

const main = async () => {
  const started = up();
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const { S3Client, CreateBucketCommand, CreateMultipartUploadCommand, UploadPartCommand, CompleteMultipartUploadCommand, GetObjectCommand, DeleteObjectCommand } = require('@aws-sdk/client-s3');
  const s3 = new S3Client({ endpoint: process.env.S3_ENDPOINT, region: process.env.AWS_REGION || 'us-east-1', forcePathStyle: true, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
  const bucket = 'rxfer-bench';
  await s3.send(new CreateBucketCommand({ Bucket: bucket })).catch(() => undefined);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'rxfer-s3-bench-'));
  const prefix = `bench-${crypto.randomBytes(3).toString('hex')}/`;
  const source = path.join(work, 'source.bin');
  U.log(`writing ${SIZE / MiB} MiB of random data`);
  const expected = await U.writeRandomFile(source, SIZE);

  const config = path.join(work, 'config.json');
  const port = await U.freePort();
  fs.writeFileSync(config, JSON.stringify({ server: { port }, log: { level: 'warn' }, storage: { kind: 's3', s3: { endpoint: process.env.S3_ENDPOINT, bucket, prefix, partBytes: PART, partsInFlight: IN_FLIGHT } } }));
  const server = spawn(process.execPath, ['--no-concurrent-sweeping', '--expose-gc', path.join(ROOT, 'dist/cli/main.js'), 'serve', '--config', config], { stdio: 'inherit' });
  await U.waitPort(port, 20000, () => server.exitCode === null);
  let peakKiB = 0;
  const sampler = setInterval(() => (peakKiB = Math.max(peakKiB, U.statusKiB(server.pid, 'VmRSS'))), 50);

  const rxferCli = (...args) => U.runTimed(process.execPath, [path.join(ROOT, 'bin/rxfer.js'), ...args, '-p', String(port), '-q']);
  const direct = {
    async up(key) {
      const t0 = process.hrtime.bigint();
      const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
      const fh = await fs.promises.open(source, 'r');
      const parts = [];
      let next = 0;
      const worker = async () => {
        for (;;) {
          const n = next++;
          if (n * PART >= SIZE) return;
          const body = Buffer.allocUnsafe(Math.min(PART, SIZE - n * PART));
          await fh.read(body, 0, body.length, n * PART);
          const r = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: n + 1, Body: body }));
          parts[n] = { PartNumber: n + 1, ETag: r.ETag };
        }
      };
      await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
      await fh.close();
      await s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }));
      return Number(process.hrtime.bigint() - t0) / 1e9;
    },
    async down(key, file) {
      const t0 = process.hrtime.bigint();
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      await require('node:stream/promises').pipeline(got.Body, fs.createWriteStream(file, { highWaterMark: MiB }));
      return Number(process.hrtime.bigint() - t0) / 1e9;
    },
  };

  const times = { rxferUp: [], directUp: [], rxferDown: [], directDown: [] };
  const serverCpu = { up: [], down: [] };
  // The server's own CPU per transfer (its worker threads included): what one more client costs.
  const cpuOf = async (list, transfer) => {
    const before = U.cpuSeconds(server.pid);
    const result = await transfer();
    list.push(U.cpuSeconds(server.pid) - before);
    return result;
  };
  const fail = (what) => { throw new Error(`wrong bytes: ${what}`); };
  for (let run = 0; run < RUNS; run++) {
    const order = run % 2 === 0 ? ['rxfer', 'direct'] : ['direct', 'rxfer'];
    for (const who of order) {
      const copy = path.join(work, `${who}.bin`);
      if (who === 'rxfer') {
        const put = await cpuOf(serverCpu.up, () => rxferCli('put', source, 'bench.bin', '--no-skip-existing'));
        if (put.code !== 0) throw new Error(`rxfer put: ${put.stderr}`);
        times.rxferUp.push(put.seconds);
        const get = await cpuOf(serverCpu.down, () => rxferCli('get', 'bench.bin', copy));
        if (get.code !== 0) throw new Error(`rxfer get: ${get.stderr}`);
        times.rxferDown.push(get.seconds);
      } else {
        times.directUp.push(await direct.up(`${prefix}direct.bin`));
        times.directDown.push(await direct.down(`${prefix}direct.bin`, copy));
      }
      const wrong = await U.checkFile(copy, expected);
      if (wrong) fail(`${who}: ${wrong}`);
      fs.rmSync(copy);
      U.log(`run ${run + 1} ${who}: up ${times[`${who}Up`].at(-1).toFixed(2)} s, down ${times[`${who}Down`].at(-1).toFixed(2)} s`);
    }
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: `${prefix}direct.bin` }));
    collectGarbage();
  }
  clearInterval(sampler);
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: `${prefix}bench.bin` })).catch(() => undefined);
  collectGarbage();
  server.kill('SIGTERM');
  await new Promise((resolve) => server.once('exit', resolve));

  const rate = (xs) => SIZE / MiB / U.median(xs);
  const result = {
    date: new Date().toISOString(), endpoint: process.env.S3_ENDPOINT, sizeMiB: SIZE / MiB, runs: RUNS, partMiB: PART / MiB, partsInFlight: IN_FLIGHT,
    upload: { rxferMiBs: rate(times.rxferUp), directMiBs: rate(times.directUp), ratio: U.median(times.directUp) / U.median(times.rxferUp) },
    download: { rxferMiBs: rate(times.rxferDown), directMiBs: rate(times.directDown), ratio: U.median(times.directDown) / U.median(times.rxferDown) },
    serverPeakRssMiB: peakKiB / 1024, serverCpuSeconds: { up: U.median(serverCpu.up), down: U.median(serverCpu.down) }, seconds: times, cpu: serverCpu,
    otherLoad: os.loadavg(),
  };
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  fs.writeFileSync(OUT, JSON.stringify(result, null, 2) + '\n');
  const f = (x) => x.toFixed(0).padStart(5);
  process.stdout.write(
    `\n${SIZE / MiB} MiB, ${RUNS} runs, medians (MiB/s)     rxfer  direct SDK  rxfer ÷ direct\n` +
      `upload   (client → rxfer → RGW)      ${f(result.upload.rxferMiBs)}  ${f(result.upload.directMiBs)}       ${result.upload.ratio.toFixed(2)}\n` +
      `download (RGW → rxfer → client)      ${f(result.download.rxferMiBs)}  ${f(result.download.directMiBs)}       ${result.download.ratio.toFixed(2)}\n` +
      `server peak RSS ${result.serverPeakRssMiB.toFixed(0)} MiB (parts of ${PART / MiB} MiB, ${IN_FLIGHT} in flight); server CPU ${result.serverCpuSeconds.up.toFixed(1)} s up, ${result.serverCpuSeconds.down.toFixed(1)} s down; load average ${os.loadavg()[0].toFixed(1)}\nwritten to ${path.relative(process.cwd(), OUT)}\n`,
  );
  fs.rmSync(work, { recursive: true, force: true });
  s3.destroy();
  if (started) execFileSync(path.join(ROOT, 'scripts/ceph/ceph-s3-down.sh'), [started, '--rm'], { stdio: 'inherit' });
};

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
