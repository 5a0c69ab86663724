// The life cycle shared by the test services (provider.mjs, cache.mjs, ci-issuer.mjs):
// one error line per failed request, and a clean exit on SIGTERM/SIGINT or, when the
// harness asks for it, when stdin closes (the harness died: no orphans).

import process from 'node:process';

import { envBool, die, SCRIPT } from './env.mjs';

// Serves `handle(req, res)` (async); a request that throws gets a 500 and a stderr line.
export function serveRequests(server, handle) {
  server.on('request', (req, res) => {
    handle(req, res).catch((err) => {
      process.stderr.write(`${SCRIPT}: error: ${err?.stack || err}\n`);
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
}

// Dies on a server error; exits 0 on SIGTERM/SIGINT, and on stdin EOF when the boolean
// variable `exitOnStdinEof` (e.g. `IDP_EXIT_ON_STDIN_EOF`) is set.
export function superviseServer(server, exitOnStdinEof) {
  server.on('error', (err) => die(`server error: ${err.message}`));
  function shutdown() {
    server.close();
    server.closeAllConnections?.();
    process.exit(0);
  }
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  if (envBool(exitOnStdinEof, false)) {
    process.stdin.on('end', shutdown);
    process.stdin.on('error', shutdown);
    process.stdin.resume();
  }
}
