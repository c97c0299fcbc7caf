#!/usr/bin/env node
// Baseline "the best a Node server can do": one header line ("PUT name" / "GET name"), then the socket
// is piped straight into fs.createWriteStream (or a read stream into the socket). No framing, no
// hashing, no staging file, no fsync. PUT answers "OK\n" once the write stream has finished.
// One connection per file. Rewritten from shared/peers/node/net-server.js.
// usage: node net-server.js PORT ROOT [highWaterMark]     (prints "listening PORT" when ready)
'use strict';
const net = require('node:net');
const fs = require('node:fs');
const path = require('node:path');
const { pipeline } = require('node:stream');

const [port, root, hwmArg] = process.argv.slice(2);
const hwm = hwmArg ? Number(hwmArg) : undefined; // undefined: Node's defaults (64 KiB fs streams)

function readHeader(sock, cb) {
  let buf = Buffer.alloc(0);
  const onData = (chunk) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    const nl = buf.indexOf(10);
    if (nl < 0) { if (buf.length > 4096) sock.destroy(); return; }
    sock.removeListener('data', onData);
    sock.pause();
    const rest = buf.subarray(nl + 1);
    if (rest.length) sock.unshift(rest);
    cb(buf.subarray(0, nl).toString('utf8'));
  };
  sock.on('data', onData);
}

const server = net.createServer({ allowHalfOpen: true }, (sock) => {
  sock.on('error', () => {});
  readHeader(sock, (line) => {
    const sp = line.indexOf(' ');
    const verb = line.slice(0, sp);
    const file = path.join(root, path.normalize('/' + line.slice(sp + 1)));
    if (verb === 'PUT') {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      const ws = fs.createWriteStream(file, hwm ? { highWaterMark: hwm } : {});
      pipeline(sock, ws, (err) => { if (err) sock.destroy(); else sock.end('OK\n'); });
    } else if (verb === 'GET') {
      const rs = fs.createReadStream(file, hwm ? { highWaterMark: hwm } : {});
      pipeline(rs, sock, (err) => { if (err) sock.destroy(); });
    } else {
      sock.end('ERR\n');
    }
  });
});
server.listen(Number(port), '127.0.0.1', () => console.log('listening', server.address().port));
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
