// aws-chunked body decoding, including the AWS "Transferring Payload in
// Multiple Chunks" example (65 KiB of 'a' in chunks of 64 KiB, 1 KiB, 0).
#include "s3/chunked.h"

#include <gtest/gtest.h>

#include <chrono>
#include <random>

#include "common/hash.h"

namespace reservoir::s3 {
namespace {

using namespace std::chrono;
using Mode = AwsChunkedDecoder::Mode;

constexpr const char* kSeed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
constexpr const char* kSig1 = "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648";
constexpr const char* kSig2 = "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497";
constexpr const char* kSig3 = "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9";

const char* s3_code(const Status& st) { return st.s3_code() ? st.s3_code() : ""; }

// The auth result verify_sigv4 produces for the example's seed request.
AuthResult example_auth() {
  http::Request req;
  req.method = "PUT";
  req.target = req.raw_path = "/examplebucket/chunkObject.txt";
  req.headers = {
      {"host", "s3.amazonaws.com"},
      {"x-amz-date", "20130524T000000Z"},
      {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
      {"authorization",
       "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
       "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
       "x-amz-decoded-content-length;x-amz-storage-class,"
       "Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"},
      {"x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"},
      {"content-encoding", "aws-chunked"},
      {"x-amz-decoded-content-length", "66560"},
      {"content-length", "66824"}};
  SecretLookup secrets = [](std::string_view) -> std::optional<std::string> {
    return std::string("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
  };
  auto r = verify_sigv4(req, secrets, sys_days{2013y / May / 24});
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->seed_signature, kSeed);
  return r.value();
}

std::string example_body() {
  std::string b;
  b += "10000;chunk-signature=" + std::string(kSig1) + "\r\n";
  b += std::string(65536, 'a') + "\r\n";
  b += "400;chunk-signature=" + std::string(kSig2) + "\r\n";
  b += std::string(1024, 'a') + "\r\n";
  b += "0;chunk-signature=" + std::string(kSig3) + "\r\n\r\n";
  return b;
}

// Feeds `body` in pieces whose sizes come from `next_size`; returns the first error.
template <typename F>
Status decode(AwsChunkedDecoder& d, std::string_view body, std::string* out, F next_size) {
  while (!body.empty()) {
    size_t n = std::min(body.size(), next_size());
    Status st = d.feed(body.substr(0, n), out);
    if (!st.ok()) return st;
    body.remove_prefix(n);
  }
  return d.finish();
}

Status decode_all(AwsChunkedDecoder& d, std::string_view body, std::string* out) {
  return decode(d, body, out, [&] { return body.size(); });
}

TEST(AwsChunked, AwsExampleWholeBody) {
  std::string body = example_body();
  ASSERT_EQ(body.size(), 66824u);  // the example's Content-Length
  AwsChunkedDecoder d(Mode::signed_chunks, example_auth());
  std::string out;
  Status st = decode_all(d, body, &out);
  ASSERT_TRUE(st.ok()) << st.to_string();
  EXPECT_TRUE(d.done());
  EXPECT_EQ(out, std::string(66560, 'a'));
  EXPECT_EQ(d.decoded_bytes(), 66560u);
  EXPECT_TRUE(d.trailers().empty());
}

TEST(AwsChunked, AwsExampleByteByByte) {
  std::string body = example_body();
  AwsChunkedDecoder d(Mode::signed_chunks, example_auth());
  std::string out;
  Status st = decode(d, body, &out, [] { return size_t{1}; });
  ASSERT_TRUE(st.ok()) << st.to_string();
  EXPECT_EQ(out, std::string(66560, 'a'));
}

TEST(AwsChunked, AwsExampleRandomSplits) {
  std::string body = example_body();
  AuthResult auth = example_auth();
  std::mt19937 rng(12345);
  for (int iter = 0; iter < 200; ++iter) {
    size_t max = iter % 3 == 0 ? 7 : iter % 3 == 1 ? 300 : 20000;
    std::uniform_int_distribution<size_t> dist(1, max);
    AwsChunkedDecoder d(Mode::signed_chunks, auth);
    std::string out;
    Status st = decode(d, body, &out, [&] { return dist(rng); });
    ASSERT_TRUE(st.ok()) << iter << ": " << st.to_string();
    ASSERT_EQ(out.size(), 66560u);
    ASSERT_EQ(out, std::string(66560, 'a'));
  }
}

TEST(AwsChunked, TamperedChunkByte) {
  AuthResult auth = example_auth();
  std::string body = example_body();
  // One byte in each chunk in turn.
  for (size_t pos : {size_t{100}, size_t{88 + 65535}, size_t{88 + 65538 + 86 + 10}}) {
    std::string t = body;
    t[pos] = 'b';
    AwsChunkedDecoder d(Mode::signed_chunks, auth);
    std::string out;
    Status st = decode_all(d, t, &out);
    ASSERT_FALSE(st.ok()) << pos;
    EXPECT_STREQ(s3_code(st), "SignatureDoesNotMatch") << pos;
    EXPECT_EQ(st.code(), Code::unauthenticated);
    EXPECT_FALSE(d.done());
    // Errors are sticky.
    EXPECT_FALSE(d.feed("", &out).ok());
    EXPECT_FALSE(d.finish().ok());
  }
}

TEST(AwsChunked, TamperedSignatureOrSeed) {
  std::string body = example_body();
  std::string t = body;
  t[30] = t[30] == '0' ? '1' : '0';  // inside the first chunk-signature
  {
    AwsChunkedDecoder d(Mode::signed_chunks, example_auth());
    std::string out;
    EXPECT_STREQ(s3_code(decode_all(d, t, &out)), "SignatureDoesNotMatch");
  }
  {
    AuthResult auth = example_auth();
    auth.seed_signature[0] = '5';
    AwsChunkedDecoder d(Mode::signed_chunks, auth);
    std::string out;
    EXPECT_STREQ(s3_code(decode_all(d, body, &out)), "SignatureDoesNotMatch");
  }
  {
    // Reordered chunks: the chain breaks.
    std::string b = "400;chunk-signature=" + std::string(kSig2) + "\r\n" +
                    std::string(1024, 'a') + "\r\n";
    AwsChunkedDecoder d(Mode::signed_chunks, example_auth());
    std::string out;
    EXPECT_STREQ(s3_code(decode_all(d, b, &out)), "SignatureDoesNotMatch");
  }
  {
    // Missing chunk-signature in a signed mode.
    AwsChunkedDecoder d(Mode::signed_chunks, example_auth());
    std::string out;
    EXPECT_STREQ(s3_code(decode_all(d, "400\r\n", &out)), "SignatureDoesNotMatch");
  }
}

TEST(AwsChunked, TruncatedBody) {
  std::string body = example_body();
  AuthResult auth = example_auth();
  for (size_t cut : {size_t{0}, size_t{10}, size_t{88}, size_t{5000}, size_t{88 + 65537},
                     body.size() - 84, body.size() - 3, body.size() - 1}) {
    AwsChunkedDecoder d(Mode::signed_chunks, auth);
    std::string out;
    Status st = d.feed(std::string_view(body).substr(0, cut), &out);
    ASSERT_TRUE(st.ok()) << cut << ": " << st.to_string();
    Status fin = d.finish();
    ASSERT_FALSE(fin.ok()) << cut;
    EXPECT_STREQ(s3_code(fin), "IncompleteBody");
    EXPECT_FALSE(d.done());
  }
}

TEST(AwsChunked, DataAfterEnd) {
  AwsChunkedDecoder d(Mode::signed_chunks, example_auth());
  std::string out;
  EXPECT_FALSE(d.feed(example_body() + "x", &out).ok());
}

TEST(AwsChunked, BadChunkSize) {
  for (const char* b : {"zz;chunk-signature=0\r\n", "\r\n", "-1\r\n", "1 2\r\n",
                        "10000000000000000\r\n", "0x10\r\n"}) {
    AwsChunkedDecoder d(Mode::unsigned_trailer, AuthResult{});
    std::string out;
    Status st = d.feed(b, &out);
    ASSERT_FALSE(st.ok()) << b;
    EXPECT_STREQ(s3_code(st), "InvalidChunkSizeError") << b;
  }
  // An endless size line is cut off at 4 KiB even when fed byte by byte.
  AwsChunkedDecoder d(Mode::unsigned_trailer, AuthResult{});
  std::string out;
  Status st;
  size_t fed = 0;
  for (; fed < 100000 && st.ok(); ++fed) st = d.feed("0", &out);
  EXPECT_FALSE(st.ok());
  EXPECT_LE(fed, 4100u);
}

TEST(AwsChunked, MissingCrlfAfterData) {
  AwsChunkedDecoder d(Mode::unsigned_trailer, AuthResult{});
  std::string out;
  Status st = d.feed("3\r\nabcX\r\n0\r\n\r\n", &out);
  ASSERT_FALSE(st.ok());
  EXPECT_STREQ(s3_code(st), "InvalidRequest");
  AwsChunkedDecoder d2(Mode::unsigned_trailer, AuthResult{});
  EXPECT_FALSE(d2.feed("3\nabc\r\n0\r\n\r\n", &out).ok());  // size line needs CRLF
}

std::string crc32_b64(std::string_view data) {
  uint32_t c = crc32_extend(0, data.data(), data.size());
  std::string be(4, '\0');
  for (int i = 0; i < 4; ++i) be[i] = static_cast<char>((c >> (24 - 8 * i)) & 0xff);
  return base64_encode(be);
}

TEST(AwsChunked, UnsignedTrailer) {
  std::string payload = std::string(1024, 'a') + std::string(100, 'b');
  std::string crc = crc32_b64(payload);
  std::string body = "400\r\n" + payload.substr(0, 1024) + "\r\n" + "64\r\n" +
                     payload.substr(1024) + "\r\n" + "0\r\n" + "x-amz-checksum-crc32:" + crc +
                     "\r\n\r\n";
  std::mt19937 rng(7);
  for (int iter = 0; iter < 50; ++iter) {
    std::uniform_int_distribution<size_t> dist(1, iter == 0 ? body.size() : 13);
    AwsChunkedDecoder d(Mode::unsigned_trailer, AuthResult{});
    std::string out;
    Status st = decode(d, body, &out, [&] { return dist(rng); });
    ASSERT_TRUE(st.ok()) << st.to_string();
    EXPECT_EQ(out, payload);
    ASSERT_EQ(d.trailers().size(), 1u);
    EXPECT_EQ(d.trailers()[0].first, "x-amz-checksum-crc32");
    EXPECT_EQ(d.trailers()[0].second, crc);
  }
}

TEST(AwsChunked, UnsignedTrailerVariants) {
  // No trailer at all; mixed-case name and spaces; chunk extensions ignored.
  {
    AwsChunkedDecoder d(Mode::unsigned_trailer, AuthResult{});
    std::string out;
    ASSERT_TRUE(decode_all(d, "3\r\nabc\r\n0\r\n\r\n", &out).ok());
    EXPECT_EQ(out, "abc");
    EXPECT_TRUE(d.trailers().empty());
  }
  {
    AwsChunkedDecoder d(Mode::unsigned_trailer, AuthResult{});
    std::string out;
    Status st = decode_all(d, "3;foo=bar\r\nabc\r\n0\r\nX-Amz-Checksum-CRC32C: AAAAAA== \r\n\r\n", &out);
    ASSERT_TRUE(st.ok()) << st.to_string();
    ASSERT_EQ(d.trailers().size(), 1u);
    EXPECT_EQ(d.trailers()[0].first, "x-amz-checksum-crc32c");
    EXPECT_EQ(d.trailers()[0].second, "AAAAAA==");
  }
  {
    // Trailer section never terminated.
    AwsChunkedDecoder d(Mode::unsigned_trailer, AuthResult{});
    std::string out;
    ASSERT_TRUE(d.feed("3\r\nabc\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n", &out).ok());
    EXPECT_STREQ(s3_code(d.finish()), "IncompleteBody");
  }
  {
    // Malformed trailer line.
    AwsChunkedDecoder d(Mode::unsigned_trailer, AuthResult{});
    std::string out;
    EXPECT_FALSE(d.feed("0\r\nno-colon-here\r\n\r\n", &out).ok());
  }
  {
    // Trailers are not allowed in plain signed mode.
    AuthResult auth = example_auth();
    std::string b = "0;chunk-signature=" +
                    chunk_signature(auth.signing_key, auth.amz_date, auth.scope,
                                    auth.seed_signature, "") +
                    "\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n";
    AwsChunkedDecoder d(Mode::signed_chunks, auth);
    std::string out;
    EXPECT_FALSE(decode_all(d, b, &out).ok());
  }
}

// Builds a STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER body as the SDKs do.
std::string signed_trailer_body(const AuthResult& a, std::string_view payload,
                                std::string_view trailer_value, bool with_sig = true,
                                std::string_view sent_value = {}) {
  std::string body;
  std::string prev = a.seed_signature;
  for (size_t off = 0; off < payload.size(); off += 1000) {
    std::string_view c = payload.substr(off, 1000);
    std::string sig = chunk_signature(a.signing_key, a.amz_date, a.scope, prev, c);
    char hex[32];
    std::snprintf(hex, sizeof hex, "%zx", c.size());
    body += std::string(hex) + ";chunk-signature=" + sig + "\r\n" + std::string(c) + "\r\n";
    prev = sig;
  }
  std::string last = chunk_signature(a.signing_key, a.amz_date, a.scope, prev, "");
  body += "0;chunk-signature=" + last + "\r\n";
  std::string block = "x-amz-checksum-crc32:" + std::string(trailer_value) + "\n";
  body += "x-amz-checksum-crc32:" + std::string(sent_value.empty() ? trailer_value : sent_value) +
          "\r\n";
  if (with_sig)
    body += "x-amz-trailer-signature:" +
            trailer_signature(a.signing_key, a.amz_date, a.scope, last, block) + "\r\n";
  body += "\r\n";
  return body;
}

TEST(AwsChunked, SignedTrailer) {
  AuthResult auth = example_auth();
  std::string payload(2500, 'z');
  std::string crc = crc32_b64(payload);
  std::string body = signed_trailer_body(auth, payload, crc);
  std::mt19937 rng(99);
  for (int iter = 0; iter < 30; ++iter) {
    std::uniform_int_distribution<size_t> dist(1, iter == 0 ? body.size() : 17);
    AwsChunkedDecoder d(Mode::signed_chunks_trailer, auth);
    std::string out;
    Status st = decode(d, body, &out, [&] { return dist(rng); });
    ASSERT_TRUE(st.ok()) << st.to_string();
    EXPECT_EQ(out, payload);
    ASSERT_EQ(d.trailers().size(), 1u);
    EXPECT_EQ(d.trailers()[0].second, crc);
  }
  {
    // Trailer value changed in transit.
    AwsChunkedDecoder d(Mode::signed_chunks_trailer, auth);
    std::string out;
    EXPECT_STREQ(s3_code(decode_all(d, signed_trailer_body(auth, payload, crc, true, "AAAAAA=="), &out)),
                 "SignatureDoesNotMatch");
  }
  {
    // Trailer signature missing.
    AwsChunkedDecoder d(Mode::signed_chunks_trailer, auth);
    std::string out;
    EXPECT_STREQ(s3_code(decode_all(d, signed_trailer_body(auth, payload, crc, false), &out)),
                 "SignatureDoesNotMatch");
  }
}

TEST(AwsChunked, LargeChunkIsStreamedNotBuffered) {
  // Output is produced as input arrives, before the chunk is complete.
  AwsChunkedDecoder d(Mode::signed_chunks, example_auth());
  std::string body = example_body();
  std::string out;
  ASSERT_TRUE(d.feed(std::string_view(body).substr(0, 88 + 30000), &out).ok());
  EXPECT_EQ(out.size(), 30000u);
  EXPECT_EQ(d.decoded_bytes(), 30000u);
}

}  // namespace
}  // namespace reservoir::s3
