// Reservoir end-to-end check with the AWS SDK for JavaScript v3.
//
//   node tests/e2e/js/s3_client_check.mjs ENDPOINT BUCKET ACCESS_KEY SECRET_KEY
//
// ENDPOINT is http://127.0.0.1:PORT or https://127.0.0.1:PORT (trust its CA with
// NODE_EXTRA_CA_CERTS); BUCKET must exist and be empty. Runs every check
// in order, prints one line per check (ok / SKIP with its reason / FAIL with the mismatch)
// and exits 1 if any check failed (2 on bad usage). Run by tests/e2e/test_client_js.py; `npm ci` in this directory first.

import { createHash, randomBytes } from "node:crypto";
import {
  S3Client,
  PutObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";

const [endpoint, bucket, accessKeyId, secretAccessKey] = process.argv.slice(2);
if (!endpoint || !bucket || !accessKeyId || !secretAccessKey) {
  console.error("usage: node s3_client_check.mjs ENDPOINT BUCKET ACCESS_KEY SECRET_KEY");
  process.exit(2);
}

const MiB = 1024 * 1024;

function makeClient(secret) {
  return new S3Client({
    endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey: secret },
    maxAttempts: 1, // a failing request must show up, not be retried away
  });
}

const s3 = makeClient(secretAccessKey);

class Mismatch extends Error {}

function check(cond, what) {
  if (!cond) throw new Mismatch(what);
}

function sameBytes(a, b) {
  return a.length === b.length && Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
}

async function readBody(body) {
  if (typeof body?.transformToByteArray === "function") return Buffer.from(await body.transformToByteArray());
  const chunks = [];
  for await (const c of body) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

async function expectError(promise, what) {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Mismatch(`${what}: the request succeeded, expected an error`);
}

function describeError(err) {
  return `${err?.name}: ${err?.message} (HTTP ${err?.$metadata?.httpStatusCode})`;
}

// ---------------------------------------------------------------------------

async function putGetHead() {
  const key = "dir/hello js.txt";
  const data = Buffer.from("hello from aws-sdk-js v3\n".repeat(100));
  const put = await s3.send(new PutObjectCommand({
    Bucket: bucket, Key: key, Body: data, ContentType: "text/plain; charset=utf-8",
    Metadata: { color: "blue", "x-answer": "42" },
  }));
  check(put.ETag, `PutObject returned no ETag: ${JSON.stringify(put)}`);

  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const body = await readBody(got.Body);
  check(sameBytes(body, data), `GetObject body differs: ${body.length} bytes vs ${data.length} put`);
  check(got.ContentType === "text/plain; charset=utf-8", `GetObject ContentType ${got.ContentType}`);
  check(got.ETag === put.ETag, `GetObject ETag ${got.ETag} != PutObject ETag ${put.ETag}`);
  check(got.Metadata?.color === "blue" && got.Metadata?.["x-answer"] === "42",
    `GetObject Metadata ${JSON.stringify(got.Metadata)}`);

  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  check(head.ContentLength === data.length, `HeadObject ContentLength ${head.ContentLength} != ${data.length}`);
  check(head.ContentType === "text/plain; charset=utf-8", `HeadObject ContentType ${head.ContentType}`);
  check(head.ETag === put.ETag, `HeadObject ETag ${head.ETag} != ${put.ETag}`);
  const md = head.Metadata || {};
  check(md.color === "blue" && md["x-answer"] === "42" && Object.keys(md).length === 2,
    `HeadObject Metadata ${JSON.stringify(md)}, expected {"color":"blue","x-answer":"42"}`);
  return "put/get/head round trip, 2500 bytes, ContentType and 2 metadata keys";
}

async function listPaging() {
  const prefix = "list/";
  const want = [];
  for (let i = 0; i < 25; i++) want.push(`${prefix}k${String(i).padStart(3, "0")}`);
  await Promise.all(want.map((Key, i) =>
    s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body: `v${i}` }))));

  const seen = [];
  let token;
  let pages = 0;
  do {
    const page = await s3.send(new ListObjectsV2Command({
      Bucket: bucket, Prefix: prefix, MaxKeys: 10, ContinuationToken: token,
    }));
    pages++;
    check(pages <= 10, "ListObjectsV2 paging does not end");
    const keys = (page.Contents || []).map((o) => o.Key);
    check(keys.length <= 10, `page ${pages} has ${keys.length} keys > MaxKeys 10`);
    check(page.KeyCount === keys.length, `page ${pages}: KeyCount ${page.KeyCount} != ${keys.length} keys`);
    seen.push(...keys);
    if (page.IsTruncated) {
      check(page.NextContinuationToken, `page ${pages} is truncated but has no NextContinuationToken`);
      token = page.NextContinuationToken;
    } else {
      token = undefined;
    }
  } while (token);
  check(pages === 3, `expected 3 pages of MaxKeys 10 over 25 keys, got ${pages}`);
  check(new Set(seen).size === seen.length, `a key was listed twice: ${seen.join(",")}`);
  check(JSON.stringify(seen) === JSON.stringify(want),
    `listed ${seen.length} keys ${JSON.stringify(seen)}, expected ${want.length} in order`);
  return `25 keys in ${pages} pages of MaxKeys 10, each once, in order`;
}

async function multipart() {
  const key = "big/random-12MiB.bin";
  const data = randomBytes(12 * MiB);
  const parts = [];
  const up = new Upload({
    client: s3,
    params: { Bucket: bucket, Key: key, Body: data, ContentType: "application/octet-stream" },
    partSize: 5 * MiB,
    queueSize: 2,
    leavePartsOnError: false,
  });
  up.on("httpUploadProgress", (p) => parts.push(p.part));
  const res = await up.done();
  check(/-3"?$/.test(res.ETag || ""), `multipart ETag ${res.ETag} is not a 3-part ETag`);

  // read it back as a stream (the Body is a Node.js Readable), hashing chunk by chunk
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  check(got.ContentLength === data.length, `GetObject ContentLength ${got.ContentLength} != ${data.length}`);
  const hash = createHash("sha256");
  let n = 0;
  let chunks = 0;
  for await (const c of got.Body) {
    hash.update(c);
    n += c.length;
    chunks++;
  }
  check(n === data.length, `streamed ${n} bytes, ${data.length} uploaded`);
  check(chunks > 1, `a 12 MiB body arrived in ${chunks} chunk(s): not streamed`);
  check(hash.digest("hex") === createHash("sha256").update(data).digest("hex"),
    "the streamed multipart object differs from the uploaded bytes");
  return `lib-storage Upload of 12 MiB in 5 MiB parts (ETag ${res.ETag}), streamed back in ${chunks} chunks, byte for byte`;
}

async function missingKey() {
  const err = await expectError(
    s3.send(new GetObjectCommand({ Bucket: bucket, Key: "no/such/key" })), "GetObject of a missing key");
  check(err.name === "NoSuchKey", `missing key: expected NoSuchKey, got ${describeError(err)}`);
  check(err.$metadata?.httpStatusCode === 404, `missing key: expected HTTP 404, got ${describeError(err)}`);
  return "GetObject of a missing key rejects with NoSuchKey (404)";
}

async function wrongSecret() {
  const bad = makeClient(secretAccessKey + "-wrong");
  const err = await expectError(
    bad.send(new PutObjectCommand({ Bucket: bucket, Key: "wrong-secret", Body: "x" })),
    "PutObject with a wrong secret");
  check(err.$metadata?.httpStatusCode === 403, `wrong secret: expected HTTP 403, got ${describeError(err)}`);
  check(err.name === "SignatureDoesNotMatch", `wrong secret: expected SignatureDoesNotMatch, got ${describeError(err)}`);
  const err2 = await expectError(
    bad.send(new GetObjectCommand({ Bucket: bucket, Key: "list/k000" })), "GetObject with a wrong secret");
  check(err2.$metadata?.httpStatusCode === 403 && err2.name === "SignatureDoesNotMatch",
    `wrong secret GetObject: expected 403 SignatureDoesNotMatch, got ${describeError(err2)}`);
  bad.destroy();
  return "a client with a wrong secret gets 403 SignatureDoesNotMatch (PutObject, GetObject)";
}

// name -> [function, skip reason or null]
const CHECKS = [
  ["put-get-head", putGetHead, null],
  ["list-paging", listPaging, null],
  ["multipart", multipart, null],
  ["missing-key", missingKey, null],
  ["wrong-secret", wrongSecret, null],
];

const t0 = Date.now();
let failed = 0;
let skipped = 0;
for (const [name, fn, skip] of CHECKS) {
  if (skip) {
    console.log(`SKIP ${name}: ${skip}`);
    skipped++;
    continue;
  }
  const t = Date.now();
  try {
    const what = await fn();
    console.log(`ok   ${name}: ${what} (${Date.now() - t} ms)`);
  } catch (err) {
    failed++;
    if (err instanceof Mismatch) console.error(`FAIL ${name}: ${err.message}`);
    else console.error(`FAIL ${name}: unexpected error ${describeError(err)}\n${err?.stack}`);
  }
}
s3.destroy();
console.log(`${CHECKS.length - failed - skipped} passed, ${skipped} skipped, ${failed} failed ` +
  `of ${CHECKS.length} checks in ${Date.now() - t0} ms`);
process.exit(failed ? 1 : 0);
