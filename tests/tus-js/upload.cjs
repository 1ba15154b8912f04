// Uploads one file to a tus 1.0 endpoint with tus-js-client, the tus project's own
// client, configured only through its public options: what any stock client would do.
//
// Usage: node upload.cjs '<json>' where the JSON has
//   endpoint     the creation URL (http://host:port/api/v1/files)
//   token        a bearer token (sent as the Authorization header)
//   file         the path of the file to send (read as a stream, as from a phone's disk)
//   sha256       declared as the upload's `sha256` metadata, as the protocol asks
//   chunkSize    optional: bytes per PATCH (default: the whole rest in one)
//   withCreation optional: send the first chunk with the creation (creation-with-upload)
//   retries      optional: how many times to retry after an error (default 0)
//
// Prints one JSON line: {"ok":true,"url":...,"retries":n} or
// {"ok":false,"status":...,"retries":n,"error":...}; exits 0 either way (1 only if
// this script itself is misused), so the caller asserts on what the client reported.
"use strict";

const fs = require("fs");
const tus = require("tus-js-client");

function main() {
  const args = JSON.parse(process.argv[2] || "null");
  if (!args || !args.endpoint || !args.file) {
    console.error("usage: node upload.cjs '{\"endpoint\":...,\"file\":...}'");
    process.exit(1);
  }
  const size = fs.statSync(args.file).size;
  let retries = 0;
  const upload = new tus.Upload(fs.createReadStream(args.file), {
    endpoint: args.endpoint,
    uploadSize: size,
    chunkSize: args.chunkSize || Infinity,
    uploadDataDuringCreation: Boolean(args.withCreation),
    metadata: args.sha256 ? { sha256: args.sha256 } : {},
    headers: args.token ? { Authorization: `Bearer ${args.token}` } : {},
    retryDelays: Array.from({ length: args.retries || 0 }, () => 50),
    onShouldRetry: (err) => {
      // The client's own rule: not on a 4xx other than 409 and 423.
      const status = err.originalResponse ? err.originalResponse.getStatus() : 0;
      const again = !(status >= 400 && status < 500) || status === 409 || status === 423;
      retries += again ? 1 : 0;
      return again;
    },
    onError: (err) => {
      const status = err.originalResponse ? err.originalResponse.getStatus() : 0;
      report({ ok: false, status, retries, error: String(err.message || err).split("\n")[0] });
    },
    onSuccess: () => report({ ok: true, url: upload.url, retries }),
  });
  upload.start();
}

function report(result) {
  process.stdout.write(JSON.stringify(result) + "\n");
}

main();
