// Baseline: a SockJS echo on node (the original pingproto server was one),
// over TLS, driven through SockJS's raw WebSocket endpoint /sock/websocket,
// with the same key and certificate as pingproto.
//
//   NODE_PATH=/var/tmp/pingproto-bench-node/node_modules \
//     node benchmarks/servers/sockjs_echo.js --tls-dir DIR [--port 0]
//
// Prints "listening on PORT" once it listens on 127.0.0.1.
'use strict';
const sockjs = require('sockjs');
const { serve } = require('./node_server');

serve((server) => {
  const echo = sockjs.createServer({ log: () => {} });
  echo.on('connection', (conn) => {
    conn.on('data', (message) => conn.write(message));
  });
  echo.installHandlers(server, { prefix: '/sock' });
});
