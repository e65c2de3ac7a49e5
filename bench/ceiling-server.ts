/**
 * One ceiling upstream, run as a child of bench/run.ts: `ceiling-server.ts express|http`.
 * Both answer `GET /` with the same constant JSON; the difference between them is the cost of
 * Express itself. Listens on a free port and reports it to the parent over IPC.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';

const kind = process.argv[2];
const body = JSON.stringify({ ok: true });

function expressServer(): Server {
  // Deliberately the framework's defaults: this measures Express, not our middleware.
  const app = express();
  app.get('/', (_req, res) => {
    res.json({ ok: true });
  });
  return app.listen(0, '127.0.0.1');
}

function httpServer(): Server {
  return createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }).listen(0, '127.0.0.1');
}

if (kind !== 'express' && kind !== 'http') {
  process.stderr.write(`ceiling-server: expected "express" or "http", got ${JSON.stringify(kind)}\n`);
  process.exit(2);
}

const server = kind === 'express' ? expressServer() : httpServer();
// Same as the real gateway: longer than nginx's upstream keepalive_timeout (60 s), so nginx
// never reuses a socket the server has just closed.
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;
server.once('listening', () => process.send?.({ port: (server.address() as AddressInfo).port }));
server.once('error', (err) => {
  process.stderr.write(`ceiling-server ${kind}: ${err.message}\n`);
  process.exit(1);
});
// The IPC channel closes when the bench dies, even by SIGKILL: do not outlive it.
process.once('disconnect', () => process.exit(0));
