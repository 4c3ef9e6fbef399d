// Baseline: node's `ws` echo over TLS (https + WebSocketServer, no
// permessage-deflate), with the same key and certificate as pingproto.
//
//   NODE_PATH=/var/tmp/pingproto-bench-node/node_modules \
//     node benchmarks/servers/ws_echo.js --tls-dir DIR [--port 0]
//
// Prints "listening on PORT" once it listens on 127.0.0.1.
'use strict';
const { WebSocketServer } = require('ws');
const { serve } = require('./node_server');

serve((server) => {
  const wss = new WebSocketServer({ server, perMessageDeflate: false });
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on('error', () => {});
  });
});
