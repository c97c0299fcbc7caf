// The image's HEALTHCHECK: exits 0 when /healthz answers 200 (listening, storage answers), 1 otherwise.
// A script rather than curl, which the slim image does not have.
'use strict';
const port = process.env.RXFER_METRICS_PORT || '9100';
const req = require('node:http').get({ host: '127.0.0.1', port, path: '/healthz', timeout: 4000 }, (res) => {
  process.exit(res.statusCode === 200 ? 0 : 1);
});
req.on('timeout', () => req.destroy());
req.on('error', () => process.exit(1));
