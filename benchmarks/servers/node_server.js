// What the node baselines share: `--tls-dir DIR [--port 0]`, an https
// server with pingproto's key and certificate chain (http without
// --tls-dir), and the "listening on PORT" line benchmarks/run waits for.
'use strict';
const fs = require('fs');
const path = require('path');
const https = require('https');
const http = require('http');

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

// Builds the server, lets `mount` attach the echo to it, then listens on
// 127.0.0.1.
function serve(mount) {
  const tlsDir = arg('--tls-dir', null);
  const server = tlsDir
    ? https.createServer({
        key: fs.readFileSync(path.join(tlsDir, 'tls.key')),
        cert: Buffer.concat([
          fs.readFileSync(path.join(tlsDir, 'tls.cert')),
          fs.readFileSync(path.join(tlsDir, 'ca.pem')),
        ]),
      })
    : http.createServer();
  mount(server);
  server.listen(Number(arg('--port', '0')), '127.0.0.1', () => {
    console.log(`listening on ${server.address().port}`);
  });
}

module.exports = { serve };
