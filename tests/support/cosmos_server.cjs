#!/usr/bin/env node
// Test peer: an in-memory, wire-compatible Cosmos DB server (@vercel/cosmosdb-server, pinned in
// tests/node/package.json) served over HTTPS on 127.0.0.1 with HTTP keep-alive.
//
// Usage: node tests/support/cosmos_server.cjs [PORT] [--stock]
//   PORT     0 or absent = pick a free port.
//   --stock  do not apply the fix below (serve the package exactly as published).
//
// Prints exactly one line "LISTENING <port>" on stdout once the socket accepts connections.
// Stops on SIGTERM/SIGINT, and when its stdin reaches EOF (so a test runner that dies without
// cleaning up does not leave the server behind when it was started with a stdin pipe).
//
// Why not the package's CLI: it builds the server without `keepAlive`, and the request handler then
// answers every request with "Connection: close"; each SDK call pays a new TCP + TLS handshake
// (about 20x slower). The library's createHttpsServer({ keepAlive: true }) answers
// "Connection: keep-alive" instead. The server certificate is the package's own self-signed,
// expired cert.pem (CN=cosmosdb): the azure-cosmos SDK skips TLS verification for the hosts
// "localhost" and "127.0.0.1", so no client configuration is needed for it.
//
// One fix is applied unless --stock is given: a point read (GET .../docs/{id}) of an item that does
// not exist, or exists under another partition key value, crashes the package's handler
// (TypeError -> HTTP 500, which the SDK retries once, ~0.5 s, then raises CosmosHttpResponseError
// 500). With the fix it answers 404 NotFound like Cosmos DB (CosmosResourceNotFoundError). Reads of
// existing items still go through the package's own handler.
"use strict";

const fs = require("fs");
const path = require("path");

const HOST = "127.0.0.1";
const PACKAGE = "@vercel/cosmosdb-server";
// Resolve the package from tests/node (where package.json pins it), whatever the working directory.
const NODE_DIR = path.resolve(__dirname, "..", "node");

function packageDir() {
  const pkgJson = require.resolve(`${PACKAGE}/package.json`, { paths: [NODE_DIR] });
  return path.dirname(pkgJson);
}

// Must run before the package's index.js is loaded: its routes table captures the handler
// functions (`require("./handler/read-document").default`) when it is first evaluated.
function fixMissingItemRead(dir) {
  const handler = require(path.join(dir, "lib", "handler", "read-document.js"));
  const header = require(path.join(dir, "lib", "utils", "get-partition-from-header.js"));
  const original = handler.default;
  handler.default = (account, req, res, params) => {
    const { dbId, collId, docId } = params;
    const collection = account.database(dbId).collection(collId);
    if (collection.read()) {
      let partition;
      try {
        partition = header.parsePartitionKey(header.default(req), docId);
      } catch (err) {
        return original(account, req, res, params); // malformed header: keep the package's answer
      }
      if (!collection.document(docId, partition).read()) {
        res.statusCode = 404;
        return {
          code: "NotFound",
          message: "Entity with the specified id does not exist in the system."
        };
      }
    }
    return original(account, req, res, params);
  };
}

function parseArgs(argv) {
  const args = { port: 0, stock: false };
  const rest = [];
  for (const arg of argv) {
    if (arg === "--stock") args.stock = true;
    else rest.push(arg);
  }
  if (rest.length > 1) {
    process.stderr.write(`cosmos_server: unexpected arguments ${JSON.stringify(rest)}\n`);
    process.exit(2);
  }
  args.port = parsePort(rest[0]);
  return args;
}

function parsePort(arg) {
  if (arg === undefined || arg === "") return 0;
  const port = Number(arg);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`cosmos_server: invalid port ${JSON.stringify(arg)}\n`);
    process.exit(2);
  }
  return port;
}

function stdinIsPipe() {
  try {
    const st = fs.fstatSync(0);
    return st.isFIFO() || st.isSocket();
  } catch (err) {
    return false;
  }
}

function main() {
  const { port, stock } = parseArgs(process.argv.slice(2));
  const dir = packageDir();
  if (!stock) fixMissingItemRead(dir);
  const { createHttpsServer } = require(dir);
  // `keepAlive` is read by the package's request handler (Connection header); Node's https server
  // also takes it as "enable TCP keep-alive on accepted sockets", which is harmless.
  const server = createHttpsServer({ keepAlive: true });
  // Node closes idle keep-alive sockets after 5 s by default; a client pool (aiohttp, urllib3)
  // may then reuse a socket the server is closing. Keep idle sockets far longer than a test run.
  server.keepAliveTimeout = 10 * 60 * 1000;
  server.headersTimeout = server.keepAliveTimeout + 1000;

  let stopping = false;
  const stop = (code) => {
    if (stopping) return;
    stopping = true;
    server.close(() => process.exit(code));
    // Idle keep-alive sockets would hold close() open.
    if (typeof server.closeAllConnections === "function") server.closeAllConnections();
    setTimeout(() => process.exit(code), 2000).unref();
  };

  server.on("error", (err) => {
    process.stderr.write(`cosmos_server: ${err.stack || err}\n`);
    process.exit(1);
  });
  server.listen(port, HOST, () => {
    process.stdout.write(`LISTENING ${server.address().port}\n`);
  });

  process.on("SIGTERM", () => stop(0));
  process.on("SIGINT", () => stop(0));
  // EOF on stdin = the parent went away. Only watched when stdin is a pipe or socket: a TTY or
  // /dev/null (immediate EOF) is ignored.
  if (stdinIsPipe()) {
    process.stdin.on("end", () => stop(0));
    process.stdin.on("error", () => stop(0));
    process.stdin.resume();
  }
}

main();
