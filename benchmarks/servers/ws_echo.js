// Baseline: node's `ws` echo over TLS (https + WebSocketServer, no
// permessage-deflate), with the same key and certificate as pingproto.
//
//   NODE_PATH=/var/tmp/pingproto-bench-node/node_modules \
//     node benchmarks/servers/ws_echo.js --tls-dir DIR [--port 0]
//
// Prints "listening on PORT" once it listens on 127.0.0.1.
'use strict';
const fs = require('fs');
const path = require('path');
const https = require('https');
const http = require('http');
const { WebSocketServer } = require('ws');

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
const wss = new WebSocketServer({ server, perMessageDeflate: false });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
});
server.listen(port, '127.0.0.1', () => {
  console.log(`listening on ${server.address().port}`);
});
