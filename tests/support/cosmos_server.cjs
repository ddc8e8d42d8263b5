#!/usr/bin/env node
// Test peer: an in-memory, wire-compatible Cosmos DB server (@vercel/cosmosdb-server, pinned in
// tests/node/package.json) served over HTTPS on 127.0.0.1 with HTTP keep-alive.
//
// Usage: node tests/support/cosmos_server.cjs [PORT] [--stock]
//   PORT     0 or absent = pick a free port.
//   --stock  do not apply the fixes below (serve the package exactly as published).
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
// Four fixes are applied unless --stock is given:
// 1. A point read (GET .../docs/{id}) of an item that does not exist, or exists under another
//    partition key value, crashes the package's handler (TypeError -> HTTP 500, which the SDK
//    retries once, ~0.5 s, then raises CosmosHttpResponseError 500). With the fix it answers 404
//    NotFound like Cosmos DB (CosmosResourceNotFoundError). Reads of existing items still go
//    through the package's own handler.
// 2. A query that carries a partition key (x-ms-documentdb-partitionkey, what the SDK sends for
//    query_items(..., partition_key=X)) runs over that logical partition's items only, as on Cosmos
//    DB. The package ignores the header and evaluates every query over every item of the container:
//    a single-partition query then sees other partitions' items (wrong), and costs a scan of the
//    whole container (a broadcast to 100,000 people reads each person's references that way: a
//    quadratic run). The launcher keeps an index of each container's items by partition key value,
//    and results are exactly the package's results minus other partitions' items.
// 3. The query engine (@zeit/cosmosdb-query) compiles FROM/JOIN into `items.reduce(($, c) =>
//    [...$, { c }], [])`, which copies the accumulated array once per item: every query is
//    quadratic in the items it reads (one cross-partition COUNT over 100,000 deliveries took about
//    70 s). The launcher rewrites those reducers to append in place (`($.push({ c }), $)`) before
//    the code is generated; the result cleaner (stripUndefined) had the same copying reducer. Its
//    sort (every query sorts, by ORDER BY then _rid) read each key path twice per comparison; the
//    launcher reads each item's keys once, then sorts with the package's own comparison. Same
//    items, same order, same results; only the copying goes.
// 4. Cosmos DB refuses a request body over 2 MB (an item is at most 2 MB, the UTF-8 length of its
//    JSON) with 413 RequestEntityTooLarge; the package stores any size, so a record that outgrows
//    the limit (a broadcast's kept reasons, say) passed every test and failed in production.
//    With the fix, a create, replace or upsert of more than 2 MB answers as Cosmos DB does.
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

// Fix 2. Cosmos DB runs a query that names a partition key value against that logical partition:
// - https://learn.microsoft.com/rest/api/cosmos-db/common-cosmosdb-rest-request-headers
//   (x-ms-documentdb-partitionkey: the partition key value the request is for);
// - https://learn.microsoft.com/azure/cosmos-db/how-to-query-container ("In-partition query": only
//   the partition the key value maps to is searched);
// - azure-cosmos `ContainerProxy.query_items(partition_key=...)`: "Partition key at which the query
//   request is targeted".
// Must run before the package's index.js is loaded (the routes table captures the handler).
const PARTITIONS = Symbol("itemsByPartition");

function partitionIndexKey(value) {
  // Cosmos DB partition key values are JSON scalars; an item without the field (undefined) is
  // kept under its own key, which no query header can name.
  return value === undefined ? "\u0000undefined" : JSON.stringify(value);
}

// The logical partition a query is scoped to, as an index key; null = the whole container (no
// header, an unparseable one, or the "undefined"/None partition `[{}]`, which stays a full scan).
function queryScope(req) {
  let header = req.headers["x-ms-documentdb-partitionkey"];
  if (Array.isArray(header)) [header] = header;
  if (typeof header !== "string" || header === "") return null;
  let parsed;
  try {
    parsed = JSON.parse(header);
  } catch (err) {
    return null;
  }
  if (!Array.isArray(parsed) || parsed.length !== 1) return null;
  const [value] = parsed;
  if (value !== null && !["string", "number", "boolean"].includes(typeof value)) return null;
  return partitionIndexKey(value);
}

function scopeQueriesToPartition(dir) {
  const Items = require(path.join(dir, "lib", "account", "items.js")).default;
  const proto = Items.prototype;

  // Every insert and removal of the container's Map of items goes through _set and delete
  // (create, replace = delete + _set, upsert, item delete). The partition index mirrors the Map,
  // in the same order, so a scoped query sees the same items, in the same order, as the
  // package's own evaluation filtered to the partition.
  const partitionsOf = (items) => {
    if (!items[PARTITIONS]) items[PARTITIONS] = new Map();
    return items[PARTITIONS];
  };
  const originalSet = proto._set;
  proto._set = function setIndexed(data) {
    const result = originalSet.call(this, data);
    const key = partitionIndexKey(this._getPartition(data));
    const partitions = partitionsOf(this);
    let members = partitions.get(key);
    if (!members) partitions.set(key, (members = new Map()));
    members.delete(data._rid); // re-inserted at the end, like the Map of items
    members.set(data._rid, this._data.get(data._rid));
    return result;
  };
  const originalDelete = proto.delete;
  proto.delete = function deleteIndexed(idOrRid, partition) {
    const data = this._item("/id", idOrRid, partition).read();
    const result = originalDelete.call(this, idOrRid, partition);
    if (data) {
      const key = partitionIndexKey(this._getPartition(data));
      const partitions = partitionsOf(this);
      const members = partitions.get(key);
      if (members) {
        members.delete(data._rid);
        if (!members.size) partitions.delete(key);
      }
    }
    return result;
  };
  // The package's Items.query with one change: `scope` picks the items it evaluates.
  proto.queryScoped = function queryScoped(params, { maxItemCount, continuation }, scope) {
    if (!this._parent.read()) return null;
    const members = partitionsOf(this).get(scope);
    const data = members ? [...members.values()].map((item) => item.read()) : [];
    const parent = this._parent.read();
    const compositeIndexes =
      (parent.indexingPolicy ? parent.indexingPolicy.compositeIndexes : null) || [];
    try {
      return this._getQuery(params.query).exec(data, {
        parameters: params.parameters,
        udf: this._userDefinedFunctions(),
        maxItemCount,
        continuation,
        compositeIndexes
      });
    } catch (err) {
      err.badRequest = true;
      throw err;
    }
  };

  const handler = require(path.join(dir, "lib", "handler", "query-documents.js"));
  const readItems = require(path.join(dir, "lib", "handler", "_read-items.js")).default;
  const readJson = require(path.join(dir, "lib", "json.js")).default;
  const original = handler.default;
  handler.default = (account, req, res, params) => {
    const scope = queryScope(req);
    if (scope === null) return original(account, req, res, params); // cross-partition: the package's own
    const { dbId, collId } = params;
    // The package's handler, evaluating the scoped partition only. Its "missing partition keys"
    // check (400 unless the WHERE clause has an equality on the partition key path) is left out:
    // it stands in for "this query needs a partition key", and this one carries it in the header.
    // Cosmos DB accepts any WHERE clause (or none) in a single-partition query.
    return readItems(req, res, "Documents", async ({ continuation, maxItemCount }) => {
      const body = await readJson(req);
      if (!body.query) {
        res.statusCode = 400;
        return { message: "missing query" };
      }
      const collection = account.database(dbId).collection(collId);
      try {
        return collection.documents.queryScoped(body, { continuation, maxItemCount }, scope);
      } catch (err) {
        if (err.badRequest) {
          res.statusCode = 400;
          return { message: err.message };
        }
        throw err;
      }
    });
  };
}

// Fix 3. `[...$, a, ...b]` as the body of a reducer `($, ...) => ...` (directly, or as the
// consequent of `cond ? [...$, a] : $`) becomes `($.push(a, ...b), $)`. The accumulator is always
// the reducer's own fresh `[]`, so appending to it in place changes nothing else.
function appendInPlace(node) {
  const isAcc = (n) => n && n.type === "Identifier" && n.name === "$";
  const copiesAcc = (n) =>
    n && n.type === "ArrayExpression" && n.elements.length >= 1 &&
    n.elements[0] && n.elements[0].type === "SpreadElement" && isAcc(n.elements[0].argument);
  const push = (array) => ({
    type: "SequenceExpression",
    expressions: [
      {
        type: "CallExpression",
        callee: {
          type: "MemberExpression",
          object: { type: "Identifier", name: "$" },
          property: { type: "Identifier", name: "push" },
          computed: false
        },
        arguments: array.elements.slice(1)
      },
      { type: "Identifier", name: "$" }
    ]
  });
  const visit = (n) => {
    if (!n || typeof n !== "object") return;
    if (Array.isArray(n)) {
      n.forEach(visit);
      return;
    }
    if (n.type === "ArrowFunctionExpression" && n.params.length === 2 && isAcc(n.params[0])) {
      if (copiesAcc(n.body)) n.body = push(n.body);
      else if (n.body.type === "ConditionalExpression" && copiesAcc(n.body.consequent) && isAcc(n.body.alternate)) {
        n.body.consequent = push(n.body.consequent);
      }
    }
    for (const key of Object.keys(n)) {
      if (key !== "loc" && key !== "start" && key !== "end") visit(n[key]);
    }
  };
  visit(node);
  return node;
}

function appendInPlaceInQueries(dir) {
  // The copy of the query engine the package itself loads.
  const engine = path.dirname(require.resolve("@zeit/cosmosdb-query/package.json", { paths: [dir] }));
  const transformer = require(path.join(engine, "lib", "transformer.js"));
  const original = transformer.default;
  // index.js calls `transformer_1.default(ast)` when a query's code is first generated.
  transformer.default = (ast) => appendInPlace(original(ast));

  // The generated code calls `$h.sort` and `$h.stripUndefined` on the helpers module at run time.
  const helpers = require(path.join(engine, "lib", "helpers.js"));
  const originalStrip = helpers.stripUndefined;
  helpers.stripUndefined = function stripUndefined(value) {
    if (!Array.isArray(value)) return originalStrip(value); // objects recurse through this one
    const out = [];
    for (const item of value) if (typeof item !== "undefined") out.push(stripUndefined(item));
    return out;
  };
  const originalSort = helpers.sort;
  helpers.sort = (collection, getRid, compositeIndexes, ...orders) => {
    originalSort([], getRid, compositeIndexes, ...orders); // its composite-index check (may throw)
    const decorated = collection.map((doc) => ({
      doc,
      values: orders.map(([keys]) => valueAt(doc, keys)),
      rid: getRid(doc)
    }));
    decorated.sort((a, b) => {
      for (let i = 0; i < orders.length; i += 1) {
        const r = compareValues(a.values[i], b.values[i]);
        if (r !== 0) return orders[i][1] ? -r : r;
      }
      return compareValues(a.rid, b.rid);
    });
    const kept = orders.length === 1 ? decorated.filter((d) => typeof d.values[0] !== "undefined") : decorated;
    return kept.map((d) => d.doc);
  };
}

// helpers.js's own getValue and comparator (not exported), unchanged.
const TYPE_ORDERS = ["undefined", "null", "boolean", "number", "string", "array", "object"];
// Fix 4. Cosmos DB's request and item size limit:
// - https://learn.microsoft.com/azure/cosmos-db/concepts-limits ("Maximum size of an item: 2 MB
//   (UTF-8 length of JSON representation)"; "Maximum request size: 2 MB");
// - https://learn.microsoft.com/rest/api/cosmos-db/http-status-codes-for-cosmosdb (413 Entity too
//   large: "The document size in the request exceeded the allowable document size for a request").
// The body Cosmos DB sends with it (as quoted in SDK issues, e.g. Azure/azure-cosmosdb-node#65):
// {"code":"RequestEntityTooLarge","message":"Message: {\"Errors\":[\"Request size is too large\"]}\r\n..."}
// The package's handlers read their body through lib/json.js at call time; the launcher makes that
// reader refuse an oversize body, and the write handlers turn the refusal into Cosmos DB's answer.
const MAX_REQUEST_BYTES = 2 * 1024 * 1024;
const TOO_LARGE = Symbol("requestEntityTooLarge");

function refuseOversizeWrites(dir) {
  const json = require(path.join(dir, "lib", "json.js"));
  const rawBody = require(require.resolve("raw-body", { paths: [dir] }));
  json.default = async (req) => {
    const body = await rawBody(req);
    if (body.length > MAX_REQUEST_BYTES) {
      const err = new Error("Request size is too large");
      err[TOO_LARGE] = true;
      throw err;
    }
    return JSON.parse(body.toString());
  };
  for (const name of ["create-document.js", "replace-document.js", "upsert-document.js"]) {
    const handler = require(path.join(dir, "lib", "handler", name));
    const original = handler.default;
    handler.default = async (account, req, res, params) => {
      try {
        return await original(account, req, res, params);
      } catch (err) {
        if (!err || !err[TOO_LARGE]) throw err;
        res.statusCode = 413;
        return {
          code: "RequestEntityTooLarge",
          message: 'Message: {"Errors":["Request size is too large"]}\r\nActivityId: ' + require("crypto").randomUUID()
        };
      }
    };
  }
}

function typeOf(v) {
  const t = typeof v;
  if (t !== "object") return t;
  if (v === null) return "null";
  return Array.isArray(v) ? "array" : t;
}
function compareValues(a, b) {
  if (a === b) return 0;
  const aType = typeOf(a);
  const bType = typeOf(b);
  if (aType === bType) {
    if (aType === "object") return 0;
    return a < b ? -1 : 1;
  }
  for (const type of TYPE_ORDERS) {
    if (aType === type) return -1;
    if (bType === type) return 1;
  }
  return 0;
}
function valueAt(doc, keys) {
  let value = doc;
  for (const key of keys) {
    value = typeof value === "object" && value ? value[key] : undefined;
    if (typeof value === "undefined") return undefined;
  }
  return value;
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
  if (!stock) {
    fixMissingItemRead(dir);
    scopeQueriesToPartition(dir);
    appendInPlaceInQueries(dir);
    refuseOversizeWrites(dir);
  }
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
