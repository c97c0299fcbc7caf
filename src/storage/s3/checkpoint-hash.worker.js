'use strict';
// Hashes the parts of resumable S3 uploads off the main thread, saving the hash state after each
// (see checkpoint-hashing.ts). Plain JavaScript: worker threads load files as Node runs them,
// without ts-jest's or tsc's help. One hasher per upload; each upload's messages are handled in
// order, because a state is only meaningful after all the bytes before it.
const { parentPort } = require('node:worker_threads');
const { createBLAKE3, createSHA256 } = require('hash-wasm');

const hashers = new Map();
let queue = Promise.resolve();

const handle = async (message) => {
  if (message.op === 'start') {
    const hasher = message.algorithm === 'sha256' ? await createSHA256() : await createBLAKE3();
    hasher.init();
    if (message.state) hasher.load(message.state);
    hashers.set(message.id, hasher);
  } else if (message.op === 'update') {
    const hasher = hashers.get(message.id);
    hasher.update(new Uint8Array(message.bytes, message.offset, message.length));
    parentPort.postMessage({ id: message.id, seq: message.seq, state: hasher.save() });
  } else if (message.op === 'end') {
    hashers.delete(message.id);
  }
};

parentPort.on('message', (message) => {
  queue = queue.then(() => handle(message)).catch((err) => parentPort.postMessage({ id: message.id, seq: message.seq, error: String(err && err.message) }));
});
