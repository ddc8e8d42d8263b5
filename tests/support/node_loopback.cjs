'use strict';
/*
 * Node preload: force every TCP server in this process onto the loopback interface.
 *
 * Usage:  node --require /path/to/node_loopback.cjs some-server.js
 *    or:  NODE_OPTIONS="--require /path/to/node_loopback.cjs" some-cli
 *
 * Why: some test peers (e.g. Microsoft 365 Agents Playground, whose CLI calls
 * `server.listen(port)`) bind all interfaces. The test suite must only ever listen on
 * 127.0.0.1, so this file patches `net.Server.prototype.listen` (which `http.Server`,
 * `https.Server` and friends inherit) and rewrites the host of every TCP listen.
 *
 * Handled argument forms (see Node's `server.listen` docs):
 *   listen()                                  -> port 0 on 127.0.0.1
 *   listen(cb)
 *   listen(port[, host][, backlog][, cb])     -> host replaced (port may be a numeric string)
 *   listen(port[, backlog][, cb])
 *   listen({ port, host, backlog, ... }[, cb])-> host replaced, ipv6Only dropped
 * Left untouched (not TCP ports): listen(path) / listen({ path }) (IPC sockets),
 *   listen(handle) / listen({ fd }) / listen({ handle }) (pre-bound handles).
 *
 * Env:
 *   NODE_LOOPBACK_HOST   host to force (default 127.0.0.1)
 *   NODE_LOOPBACK_DEBUG  if set, log each rewrite to stderr
 */
const net = require('net');

const HOST = process.env.NODE_LOOPBACK_HOST || '127.0.0.1';
const DEBUG = !!process.env.NODE_LOOPBACK_DEBUG;
const originalListen = net.Server.prototype.listen;

function isPortLike(v) {
  return typeof v === 'number' || (typeof v === 'string' && /^\s*\d+\s*$/.test(v));
}

function toNumberOrUndefined(v) {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && /^\s*\d+\s*$/.test(v)) return Number(v);
  return undefined;
}

function loopbackListen(...args) {
  let callback;
  if (args.length && typeof args[args.length - 1] === 'function') callback = args.pop();

  const first = args[0];
  let options;

  if (first === undefined || first === null || isPortLike(first)) {
    // listen(), listen(port[, host][, backlog]), listen(port[, backlog])
    options = { port: first === undefined || first === null ? 0 : Number(first), host: HOST };
    // Node takes backlog from args[1] if numeric, else args[2].
    const backlog = toNumberOrUndefined(args[1]) ?? toNumberOrUndefined(args[2]);
    if (backlog !== undefined) options.backlog = backlog;
  } else if (typeof first === 'object' && !first._handle && !(first instanceof net.Server)) {
    const isIpc = first.path !== undefined && first.path !== null;
    const isHandle = first.handle !== undefined || (first.fd !== undefined && first.port === undefined);
    if (isIpc || isHandle) return originalListen.apply(this, callback ? [...args, callback] : args);
    options = { ...first, host: HOST };
    if (options.port === undefined || options.port === null) options.port = 0;
    delete options.ipv6Only;
  } else {
    // Pipe path string, or a handle object: not a TCP port, leave alone.
    return originalListen.apply(this, callback ? [...args, callback] : args);
  }

  if (DEBUG) process.stderr.write(`[node_loopback] listen ${JSON.stringify(options)}\n`);
  return callback ? originalListen.call(this, options, callback) : originalListen.call(this, options);
}

net.Server.prototype.listen = loopbackListen;
