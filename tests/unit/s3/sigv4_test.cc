// SigV4 verification against the AWS S3 documentation examples
// ("Signature Calculations for the Authorization Header" and "Authenticating
// Requests: Using Query Parameters"): access key AKIAIOSFODNN7EXAMPLE, secret
// wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY, 20130524T000000Z, us-east-1.
#include "s3/sigv4.h"

#include <gtest/gtest.h>

#include <cstring>

#include "common/hash.h"

namespace reservoir::s3 {
namespace {

using namespace std::chrono;

constexpr const char* kAk = "AKIAIOSFODNN7EXAMPLE";
constexpr const char* kSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
constexpr const char* kEmpty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr const char* kAuthPrefix =
    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,";

const system_clock::time_point kExampleTime = sys_days{2013y / May / 24};

SecretLookup secrets() {
  return [](std::string_view ak) -> std::optional<std::string> {
    if (ak == kAk) return std::string(kSecret);
    if (ak == "other") return std::string("other-secret");
    return std::nullopt;
  };
}

http::Request make_req(std::string method, std::string target,
                       std::vector<std::pair<std::string, std::string>> headers) {
  http::Request r;
  r.method = std::move(method);
  r.target = std::move(target);
  size_t q = r.target.find('?');
  r.raw_path = r.target.substr(0, q);
  r.raw_query = q == std::string::npos ? "" : r.target.substr(q + 1);
  r.headers = std::move(headers);
  return r;
}

std::vector<std::string> split_semi(std::string_view s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    size_t n = s.find(';', pos);
    out.emplace_back(s.substr(pos, n - pos));
    if (n == std::string_view::npos) break;
    pos = n + 1;
  }
  return out;
}

const char* s3_code(const Status& st) { return st.s3_code() ? st.s3_code() : ""; }

// --- GET Object with Range ---------------------------------------------------

http::Request get_object_example() {
  return make_req("GET", "/test.txt",
                  {{"host", "examplebucket.s3.amazonaws.com"},
                   {"range", "bytes=0-9"},
                   {"x-amz-content-sha256", kEmpty},
                   {"x-amz-date", "20130524T000000Z"},
                   {"authorization",
                    std::string(kAuthPrefix) +
                        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
                        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"}});
}

TEST(SigV4, GetObjectExampleCanonicalRequest) {
  auto req = get_object_example();
  std::string creq =
      canonical_request(req, split_semi("host;range;x-amz-content-sha256;x-amz-date"), kEmpty);
  EXPECT_EQ(creq,
            "GET\n/test.txt\n\n"
            "host:examplebucket.s3.amazonaws.com\n"
            "range:bytes=0-9\n"
            "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
            "x-amz-date:20130524T000000Z\n\n"
            "host;range;x-amz-content-sha256;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(string_to_sign("20130524T000000Z", "20130524/us-east-1/s3/aws4_request", creq),
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
}

TEST(SigV4, GetObjectExampleVerifies) {
  auto r = verify_sigv4(get_object_example(), secrets(), kExampleTime + minutes(3));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_FALSE(r->anonymous);
  EXPECT_FALSE(r->presigned);
  EXPECT_EQ(r->access_key, kAk);
  EXPECT_EQ(r->amz_date, "20130524T000000Z");
  EXPECT_EQ(r->scope, "20130524/us-east-1/s3/aws4_request");
  EXPECT_EQ(r->seed_signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  EXPECT_EQ(r->payload_hash, kEmpty);
  EXPECT_EQ(r->signing_key, derive_signing_key(kSecret, "20130524", "us-east-1", "s3"));
}

TEST(SigV4, SignRequestReproducesGetObjectExample) {
  auto req = make_req("GET", "/test.txt",
                      {{"host", "examplebucket.s3.amazonaws.com"}, {"range", "bytes=0-9"}});
  sign_request(req, kAk, kSecret, "us-east-1", kEmpty, kExampleTime);
  EXPECT_EQ(req.header_or("x-amz-date"), "20130524T000000Z");
  EXPECT_EQ(req.header_or("x-amz-content-sha256"), kEmpty);
  EXPECT_EQ(req.header_or("authorization"),
            std::string(kAuthPrefix) +
                "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
                "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

// --- PUT Object ---------------------------------------------------------------

http::Request put_object_example(std::string target) {
  return make_req(
      "PUT", std::move(target),
      {{"host", "examplebucket.s3.amazonaws.com"},
       {"date", "Fri, 24 May 2013 00:00:00 GMT"},
       {"authorization",
        std::string(kAuthPrefix) +
            "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,"
            "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"},
       {"x-amz-date", "20130524T000000Z"},
       {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
       {"x-amz-content-sha256", "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"}});
}

TEST(SigV4, PutObjectExample) {
  EXPECT_EQ(sha256_hex("Welcome to Amazon S3."),
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  // The client may send '$' raw or percent-encoded; both canonicalise to %24.
  for (const char* target : {"/test%24file.text", "/test$file.text"}) {
    auto req = put_object_example(target);
    EXPECT_EQ(canonical_request(
                  req, split_semi("date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class"),
                  "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"),
              "PUT\n/test%24file.text\n\n"
              "date:Fri, 24 May 2013 00:00:00 GMT\n"
              "host:examplebucket.s3.amazonaws.com\n"
              "x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
              "x-amz-date:20130524T000000Z\n"
              "x-amz-storage-class:REDUCED_REDUNDANCY\n\n"
              "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
              "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072")
        << target;
    auto r = verify_sigv4(req, secrets(), kExampleTime - minutes(10));
    ASSERT_TRUE(r.ok()) << target << ": " << r.status().to_string();
    EXPECT_EQ(r->seed_signature,
              "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
    EXPECT_EQ(r->payload_hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  }
}

TEST(SigV4, SignRequestReproducesPutObjectExample) {
  auto req = make_req("PUT", "/test%24file.text",
                      {{"host", "examplebucket.s3.amazonaws.com"},
                       {"date", "Fri, 24 May 2013 00:00:00 GMT"},
                       {"x-amz-storage-class", "REDUCED_REDUNDANCY"}});
  sign_request(req, kAk, kSecret, "us-east-1",
               "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072", kExampleTime);
  EXPECT_EQ(req.header_or("authorization"),
            std::string(kAuthPrefix) +
                "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,"
                "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

// --- GET Bucket Lifecycle / list objects --------------------------------------

http::Request bucket_example(std::string target, const char* sig) {
  return make_req("GET", std::move(target),
                  {{"host", "examplebucket.s3.amazonaws.com"},
                   {"authorization", std::string(kAuthPrefix) +
                                         "SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
                                         "Signature=" + sig},
                   {"x-amz-date", "20130524T000000Z"},
                   {"x-amz-content-sha256", kEmpty}});
}

TEST(SigV4, GetBucketLifecycleExample) {
  auto req = bucket_example(
      "/?lifecycle", "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
  EXPECT_EQ(canonical_request(req, split_semi("host;x-amz-content-sha256;x-amz-date"), kEmpty),
            "GET\n/\nlifecycle=\n"
            "host:examplebucket.s3.amazonaws.com\n"
            "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
            "x-amz-date:20130524T000000Z\n\n"
            "host;x-amz-content-sha256;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  auto r = verify_sigv4(req, secrets(), kExampleTime);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->seed_signature, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

TEST(SigV4, ListObjectsExample) {
  const char* sig = "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7";
  auto req = bucket_example("/?max-keys=2&prefix=J", sig);
  EXPECT_EQ(canonical_request(req, split_semi("host;x-amz-content-sha256;x-amz-date"), kEmpty),
            "GET\n/\nmax-keys=2&prefix=J\n"
            "host:examplebucket.s3.amazonaws.com\n"
            "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
            "x-amz-date:20130524T000000Z\n\n"
            "host;x-amz-content-sha256;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  auto r = verify_sigv4(req, secrets(), kExampleTime);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->seed_signature, sig);

  // Query order on the wire does not matter.
  auto swapped = bucket_example("/?prefix=J&max-keys=2", sig);
  EXPECT_TRUE(verify_sigv4(swapped, secrets(), kExampleTime).ok());

  // sign_request produces the same Authorization header.
  auto fresh = make_req("GET", "/?max-keys=2&prefix=J", {{"host", "examplebucket.s3.amazonaws.com"}});
  sign_request(fresh, kAk, kSecret, "us-east-1", kEmpty, kExampleTime);
  EXPECT_EQ(fresh.header_or("authorization"), req.header_or("authorization"));
}

// --- Presigned URL ---------------------------------------------------------

constexpr const char* kPresignQuery =
    "X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
    "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host";
constexpr const char* kPresignSig = "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";

http::Request presign_example(std::string sig = kPresignSig) {
  return make_req("GET", std::string("/test.txt?") + kPresignQuery + "&X-Amz-Signature=" + sig,
                  {{"host", "examplebucket.s3.amazonaws.com"}});
}

TEST(SigV4, PresignedExample) {
  auto req = presign_example();
  EXPECT_EQ(canonical_request(req, {"host"}, "UNSIGNED-PAYLOAD"),
            "GET\n/test.txt\n"
            "X-Amz-Algorithm=AWS4-HMAC-SHA256"
            "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
            "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\n"
            "host:examplebucket.s3.amazonaws.com\n\n"
            "host\nUNSIGNED-PAYLOAD");
  for (auto now : {kExampleTime, kExampleTime + hours(23), kExampleTime - minutes(14)}) {
    auto r = verify_sigv4(req, secrets(), now);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_TRUE(r->presigned);
    EXPECT_EQ(r->seed_signature, kPresignSig);
    EXPECT_EQ(r->payload_hash, "UNSIGNED-PAYLOAD");
    EXPECT_EQ(r->access_key, kAk);
  }
}

TEST(SigV4, PresignedExpired) {
  auto r = verify_sigv4(presign_example(), secrets(), kExampleTime + seconds(86401));
  ASSERT_FALSE(r.ok());
  EXPECT_STREQ(s3_code(r.status()), "AccessDenied");
  EXPECT_EQ(r.status().code(), Code::permission_denied);
  EXPECT_EQ(r.status().message(), "Request has expired");
}

TEST(SigV4, PresignedNotYetValid) {
  auto r = verify_sigv4(presign_example(), secrets(), kExampleTime - minutes(16));
  ASSERT_FALSE(r.ok());
  EXPECT_STREQ(s3_code(r.status()), "AccessDenied");
}

TEST(SigV4, PresignedBadSignatureAndParams) {
  auto bad = presign_example("aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d405");
  auto r = verify_sigv4(bad, secrets(), kExampleTime);
  ASSERT_FALSE(r.ok());
  EXPECT_STREQ(s3_code(r.status()), "SignatureDoesNotMatch");

  // Any change to the signed query breaks it.
  auto req = presign_example();
  req.raw_query += "&extra=1";
  EXPECT_STREQ(s3_code(verify_sigv4(req, secrets(), kExampleTime).status()), "SignatureDoesNotMatch");

  // Expiry above one week.
  auto week = make_req("GET",
                       "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE"
                       "%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z"
                       "&X-Amz-Expires=604801&X-Amz-SignedHeaders=host&X-Amz-Signature=" +
                           std::string(kPresignSig),
                       {{"host", "examplebucket.s3.amazonaws.com"}});
  EXPECT_STREQ(s3_code(verify_sigv4(week, secrets(), kExampleTime).status()),
               "AuthorizationQueryParametersError");

  // Missing X-Amz-Expires.
  auto noexp = make_req("GET",
                        "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE"
                        "%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z"
                        "&X-Amz-SignedHeaders=host&X-Amz-Signature=" + std::string(kPresignSig),
                        {{"host", "examplebucket.s3.amazonaws.com"}});
  EXPECT_STREQ(s3_code(verify_sigv4(noexp, secrets(), kExampleTime).status()),
               "AuthorizationQueryParametersError");

  // Unknown key.
  auto unk = make_req("GET",
                      "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=NOPE"
                      "%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z"
                      "&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=" +
                          std::string(kPresignSig),
                      {{"host", "examplebucket.s3.amazonaws.com"}});
  EXPECT_STREQ(s3_code(verify_sigv4(unk, secrets(), kExampleTime).status()), "InvalidAccessKeyId");
}

TEST(SigV4, PresignedWithContentSha256InQuery) {
  // Build a presigned PUT by hand with X-Amz-Content-Sha256 in the query.
  std::string hash = sha256_hex("hello");
  std::string q = std::string("X-Amz-Algorithm=AWS4-HMAC-SHA256"
                              "&X-Amz-Content-Sha256=") + hash +
                  "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
                  "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host";
  auto req = make_req("PUT", "/b/k?" + q, {{"host", "localhost:9000"}});
  std::string key = derive_signing_key(kSecret, "20130524", "us-east-1", "s3");
  std::string sig = hex_encode(hmac_sha256_raw(
      key, string_to_sign("20130524T000000Z", "20130524/us-east-1/s3/aws4_request",
                          canonical_request(req, {"host"}, hash))));
  req.raw_query += "&X-Amz-Signature=" + sig;
  auto r = verify_sigv4(req, secrets(), kExampleTime + seconds(30));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->payload_hash, hash);
}

// --- Chunked upload seed signature -----------------------------------------

TEST(SigV4, ChunkedUploadSeedSignature) {
  auto req = make_req(
      "PUT", "/examplebucket/chunkObject.txt",
      {{"host", "s3.amazonaws.com"},
       {"x-amz-date", "20130524T000000Z"},
       {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
       {"authorization",
        std::string(kAuthPrefix) +
            "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
            "x-amz-decoded-content-length;x-amz-storage-class,"
            "Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"},
       {"x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"},
       {"content-encoding", "aws-chunked"},
       {"x-amz-decoded-content-length", "66560"},
       {"content-length", "66824"}});
  auto r = verify_sigv4(req, secrets(), kExampleTime);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->seed_signature, "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9");
  EXPECT_EQ(r->payload_hash, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD");

  std::string sig1 = chunk_signature(r->signing_key, r->amz_date, r->scope, r->seed_signature,
                                     std::string(65536, 'a'));
  EXPECT_EQ(sig1, "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648");
  std::string sig2 =
      chunk_signature(r->signing_key, r->amz_date, r->scope, sig1, std::string(1024, 'a'));
  EXPECT_EQ(sig2, "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497");
  std::string sig3 = chunk_signature(r->signing_key, r->amz_date, r->scope, sig2, "");
  EXPECT_EQ(sig3, "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9");
  EXPECT_EQ(chunk_signature_for_hash(r->signing_key, r->amz_date, r->scope, sig2, kEmpty), sig3);
}

// --- Negative cases ------------------------------------------------------------

TEST(SigV4, WrongSecretIsSignatureDoesNotMatch) {
  auto req = get_object_example();
  SecretLookup wrong = [](std::string_view) -> std::optional<std::string> {
    return std::string("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEZ");
  };
  auto r = verify_sigv4(req, wrong, kExampleTime);
  ASSERT_FALSE(r.ok());
  EXPECT_STREQ(s3_code(r.status()), "SignatureDoesNotMatch");
  EXPECT_EQ(r.status().code(), Code::unauthenticated);
}

TEST(SigV4, TamperedRequestIsSignatureDoesNotMatch) {
  auto req = get_object_example();
  req.headers[1].second = "bytes=0-10";
  EXPECT_STREQ(s3_code(verify_sigv4(req, secrets(), kExampleTime).status()), "SignatureDoesNotMatch");
  req = get_object_example();
  req.raw_path = "/test2.txt";
  EXPECT_STREQ(s3_code(verify_sigv4(req, secrets(), kExampleTime).status()), "SignatureDoesNotMatch");
  req = get_object_example();
  req.method = "DELETE";
  EXPECT_STREQ(s3_code(verify_sigv4(req, secrets(), kExampleTime).status()), "SignatureDoesNotMatch");
}

TEST(SigV4, UnknownAccessKey) {
  auto req = get_object_example();
  SecretLookup none = [](std::string_view) -> std::optional<std::string> { return std::nullopt; };
  auto r = verify_sigv4(req, none, kExampleTime);
  ASSERT_FALSE(r.ok());
  EXPECT_STREQ(s3_code(r.status()), "InvalidAccessKeyId");
  EXPECT_EQ(r.status().code(), Code::unauthenticated);
}

TEST(SigV4, ClockSkew) {
  auto req = get_object_example();
  EXPECT_TRUE(verify_sigv4(req, secrets(), kExampleTime + minutes(15)).ok());
  EXPECT_TRUE(verify_sigv4(req, secrets(), kExampleTime - minutes(15)).ok());
  for (auto now : {kExampleTime + minutes(16), kExampleTime - minutes(16), kExampleTime + hours(24 * 365)}) {
    auto r = verify_sigv4(req, secrets(), now);
    ASSERT_FALSE(r.ok());
    EXPECT_STREQ(s3_code(r.status()), "RequestTimeTooSkewed");
  }
}

TEST(SigV4, MalformedAuthorizationHeader) {
  const char* bad[] = {
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request",
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3,"
      "SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature="
      "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
      "SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature=xyz",
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
      "SignedHeaders=,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
      "AWS4-HMAC-SHA256 garbage",
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130525/us-east-1/s3/aws4_request,"
      "SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature="
      "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",  // date mismatch
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
      "SignedHeaders=range;x-amz-content-sha256;x-amz-date,Signature="
      "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",  // host not signed
  };
  for (const char* a : bad) {
    auto req = get_object_example();
    req.headers[4].second = a;
    auto r = verify_sigv4(req, secrets(), kExampleTime);
    ASSERT_FALSE(r.ok()) << a;
    EXPECT_STREQ(s3_code(r.status()), "AuthorizationHeaderMalformed") << a;
  }
  auto req = get_object_example();
  req.headers[4].second = "AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=";
  auto r = verify_sigv4(req, secrets(), kExampleTime);
  ASSERT_FALSE(r.ok());
  EXPECT_STREQ(s3_code(r.status()), "InvalidRequest");
}

TEST(SigV4, TolerantAuthorizationHeaderSyntax) {
  const char* variants[] = {
      // spaces after commas (as the AWS docs show and many clients send)
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
      "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
      "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
      // spaces only, different order, extra whitespace, upper-case hex
      "  AWS4-HMAC-SHA256   Signature=F0E8BDB87C964420E857BD35B5D6ED310BD44F0170ABA48DD91039C6036BDB41 "
      "Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request \t"
      "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date  ",
      // spaces around '=' and trailing comma
      "AWS4-HMAC-SHA256 Credential = AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request ,"
      "SignedHeaders= host;range;x-amz-content-sha256;x-amz-date ,"
      "Signature =f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41,",
  };
  for (const char* a : variants) {
    auto req = get_object_example();
    req.headers[4].second = a;
    auto r = verify_sigv4(req, secrets(), kExampleTime);
    EXPECT_TRUE(r.ok()) << a << ": " << r.status().to_string();
  }
}

TEST(SigV4, MissingContentSha256) {
  auto req = get_object_example();
  req.headers.erase(req.headers.begin() + 2);
  auto r = verify_sigv4(req, secrets(), kExampleTime);
  ASSERT_FALSE(r.ok());
  EXPECT_STREQ(s3_code(r.status()), "InvalidRequest");
  EXPECT_EQ(r.status().message(), "Missing required header for this request: x-amz-content-sha256");
}

TEST(SigV4, BadContentSha256Value) {
  auto req = make_req("GET", "/x", {{"host", "h"}});
  sign_request(req, kAk, kSecret, "us-east-1", "not-a-hash", kExampleTime);
  EXPECT_STREQ(s3_code(verify_sigv4(req, secrets(), kExampleTime).status()), "InvalidArgument");
}

TEST(SigV4, AnonymousAndBothMechanisms) {
  auto anon = make_req("GET", "/b/k?list-type=2", {{"host", "h"}});
  auto r = verify_sigv4(anon, secrets(), kExampleTime);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->anonymous);

  auto both = presign_example();
  both.headers.emplace_back("authorization", get_object_example().header_or("authorization"));
  EXPECT_STREQ(s3_code(verify_sigv4(both, secrets(), kExampleTime).status()), "InvalidArgument");
}

TEST(SigV4, DateHeaderInsteadOfXAmzDate) {
  auto req = make_req("GET", "/test.txt",
                      {{"host", "examplebucket.s3.amazonaws.com"},
                       {"date", "Fri, 24 May 2013 00:00:00 GMT"},
                       {"x-amz-content-sha256", "UNSIGNED-PAYLOAD"}});
  std::vector<std::string> sh = {"date", "host", "x-amz-content-sha256"};
  std::string key = derive_signing_key(kSecret, "20130524", "us-east-1", "s3");
  std::string sig = hex_encode(hmac_sha256_raw(
      key, string_to_sign("20130524T000000Z", "20130524/us-east-1/s3/aws4_request",
                          canonical_request(req, sh, "UNSIGNED-PAYLOAD"))));
  req.headers.emplace_back("authorization", std::string(kAuthPrefix) +
                                                "SignedHeaders=date;host;x-amz-content-sha256,"
                                                "Signature=" + sig);
  auto r = verify_sigv4(req, secrets(), kExampleTime + minutes(1));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->amz_date, "20130524T000000Z");
  EXPECT_EQ(r->payload_hash, "UNSIGNED-PAYLOAD");
  EXPECT_STREQ(s3_code(verify_sigv4(req, secrets(), kExampleTime + hours(1)).status()),
               "RequestTimeTooSkewed");
}

// --- Building blocks -------------------------------------------------------------

TEST(SigV4, UriEncodeDecode) {
  EXPECT_EQ(uri_encode("AZaz09-_.~", true), "AZaz09-_.~");
  EXPECT_EQ(uri_encode("a b+c/d=e&f", true), "a%20b%2Bc%2Fd%3De%26f");
  EXPECT_EQ(uri_encode("a b+c/d", false), "a%20b%2Bc/d");
  EXPECT_EQ(uri_encode("\xc3\xa9", true), "%C3%A9");
  EXPECT_EQ(uri_decode("a%20b+c%2fd%C3%A9"), std::optional<std::string>("a b+c/d\xc3\xa9"));
  EXPECT_FALSE(uri_decode("%"));
  EXPECT_FALSE(uri_decode("abc%2"));
  EXPECT_FALSE(uri_decode("%zz"));
}

TEST(SigV4, CanonicalQueryAndHeaders) {
  auto req = make_req("GET", "/b/my%20key?b=2&a=&a=1&c&%41=x&plus=a+b&slash=a/b&&",
                      {{"host", "h"}, {"x-amz-meta-a", "  one   two  "}, {"x-amz-meta-a", "three"}});
  EXPECT_EQ(canonical_request(req, {"host", "x-amz-meta-a"}, "UNSIGNED-PAYLOAD"),
            "GET\n/b/my%20key\n"
            "A=x&a=&a=1&b=2&c=&plus=a%2Bb&slash=a%2Fb\n"
            "host:h\nx-amz-meta-a:one two,three\n\n"
            "host;x-amz-meta-a\nUNSIGNED-PAYLOAD");
}

TEST(SigV4, RoundTripUnicodeSpacesPlus) {
  const std::string keys[] = {"simple.txt", "dir/sub dir/file name.txt", "plus+sign+key",
                              "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e/\xc3\xa9t\xc3\xa9.bin",
                              "weird !$&'()*,;=:@[]~%.txt", "trailing/"};
  for (const auto& key : keys) {
    std::string target = "/bucket/" + uri_encode(key, false) + "?prefix=" + uri_encode(key, true) +
                         "&delimiter=%2F&list-type=2&empty=&start-after=" + uri_encode("a b+c", true);
    auto req = make_req("GET", target,
                        {{"host", "127.0.0.1:9000"}, {"x-amz-meta-note", "hello   world"},
                         {"user-agent", "bench/1.0"}});
    auto now = system_clock::now();
    sign_request(req, "other", "other-secret", "eu-west-3", "UNSIGNED-PAYLOAD", now);
    auto r = verify_sigv4(req, secrets(), now + seconds(5));
    ASSERT_TRUE(r.ok()) << key << ": " << r.status().to_string();
    EXPECT_EQ(r->access_key, "other");
    EXPECT_EQ(r->scope.substr(8), "/eu-west-3/s3/aws4_request");

    // The same request with a literal '+' and raw unicode in the query verifies
    // identically because both sides decode and re-encode.
    auto raw = req;
    raw.raw_query = "prefix=" + uri_encode(key, true) +
                    "&delimiter=/&list-type=2&empty&start-after=a%20b+c";
    EXPECT_TRUE(verify_sigv4(raw, secrets(), now).ok()) << key;

    // Tampering with a query value breaks the signature.
    auto t = req;
    t.raw_query += "x";
    EXPECT_STREQ(s3_code(verify_sigv4(t, secrets(), now).status()), "SignatureDoesNotMatch") << key;
  }
}

TEST(SigV4, RoundTripStreamingPayloadHash) {
  auto req = make_req("PUT", "/b/k", {{"host", "h"}, {"content-encoding", "aws-chunked"}});
  auto now = system_clock::now();
  sign_request(req, kAk, kSecret, "us-east-1", "STREAMING-UNSIGNED-PAYLOAD-TRAILER", now);
  auto r = verify_sigv4(req, secrets(), now);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->payload_hash, "STREAMING-UNSIGNED-PAYLOAD-TRAILER");
  // Swapping the payload mode after signing is detected.
  for (auto& [k, v] : req.headers)
    if (k == "x-amz-content-sha256") v = "UNSIGNED-PAYLOAD";
  EXPECT_STREQ(s3_code(verify_sigv4(req, secrets(), now).status()), "SignatureDoesNotMatch");
}

}  // namespace
}  // namespace reservoir::s3
