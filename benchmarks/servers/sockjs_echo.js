// Baseline: a SockJS echo on node (the original pingproto server was one),
// over TLS, driven through SockJS's raw WebSocket endpoint /sock/websocket,
// with the same key and certificate as pingproto.
//
//   NODE_PATH=/var/tmp/pingproto-bench-node/node_modules \
//     node benchmarks/servers/sockjs_echo.js --tls-dir DIR [--port 0]
//
// Prints "listening on PORT" once it listens on 127.0.0.1.
'use strict';
const fs = require('fs');
const path = require('path');
const https = require('https');
const http = require('http');
const sockjs = require('sockjs');

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

const tlsDir = arg('--tls-dir', null);
const port = Number(arg('--port', '0'));
const server = tlsDir
  ? https.createServer({
      key: fs.readFileSync(path.join(tlsDir, 'tls.key')),
      cert: Buffer.concat([
        fs.readFileSync(path.join(tlsDir, 'tls.cert')),
        fs.readFileSync(path.join(tlsDir, 'ca.pem')),
      ]),
    })
  : http.createServer();
const echo = sockjs.createServer({ log: () => {} });
echo.on('connection', (conn) => {
  conn.on('data', (message) => conn.write(message));
});
echo.installHandlers(server, { prefix: '/sock' });
server.listen(port, '127.0.0.1', () => {
  console.log(`listening on ${server.address().port}`);
});
