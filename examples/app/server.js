'use strict';
// A Node HTTP app that drains gracefully: on SIGTERM it stops accepting, finishes in-flight
// requests, then exits 0. Under hainit, SIGTERM reaches it only after readiness has failed
// for --shutdown-delay, so no new request was routed to it meanwhile.
const http = require('node:http');

const port = Number(process.env.PORT || 8080);
let inFlight = 0;
const server = http.createServer((req, res) => {
  inFlight++;
  const ms = Number(new URL(req.url, 'http://x').searchParams.get('ms') || 0);
  setTimeout(() => {
    res.end(`hello from pid ${process.pid} after ${ms} ms\n`);
    inFlight--;
  }, ms);
});
server.keepAliveTimeout = 2000;
server.listen(port, () => console.log(`app: listening on :${port}`));

process.on('SIGTERM', () => {
  console.log(`app: SIGTERM, draining ${inFlight} request(s)`);
  server.close(() => {
    console.log('app: drained, bye');
    process.exit(0);
  });
  server.closeIdleConnections();
});
