#include "s3/chunked.h"

#include <openssl/crypto.h>

#include <algorithm>

namespace reservoir::s3 {

namespace {

constexpr size_t kMaxLine = 4096;            // a size line or one trailer line
constexpr size_t kMaxTrailerBytes = 16384;   // all trailer lines together
constexpr size_t kMaxTrailers = 64;

Status bad_request(std::string msg) {
  return Status(Code::invalid_argument, std::move(msg), "InvalidRequest");
}
Status bad_size(std::string msg) {
  return Status(Code::invalid_argument, std::move(msg), "InvalidChunkSizeError");
}
Status bad_signature(std::string msg) {
  return Status(Code::unauthenticated, std::move(msg), "SignatureDoesNotMatch");
}

bool is_space(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_sig(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (hexval(c) < 0) return false;
  return true;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool sig_equal(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

AwsChunkedDecoder::AwsChunkedDecoder(Mode mode, AuthResult auth)
    : mode_(mode), auth_(std::move(auth)) {
  prev_sig_ = lower(auth_.seed_signature);
}

bool AwsChunkedDecoder::done() const { return state_ == State::done && error_.ok(); }

Status AwsChunkedDecoder::finish() const {
  if (!error_.ok()) return error_;
  if (state_ != State::done)
    return Status(Code::invalid_argument,
                  "You did not provide the number of bytes specified by the Content-Length HTTP "
                  "header (aws-chunked body ended early).",
                  "IncompleteBody");
  return ok_status();
}

Status AwsChunkedDecoder::feed(std::string_view in, std::string* out) {
  if (!error_.ok()) return error_;
  Status st = feed_impl(in, out);
  if (!st.ok()) error_ = st;
  return st;
}

Status AwsChunkedDecoder::feed_impl(std::string_view in, std::string* out) {
  while (!in.empty()) {
    switch (state_) {
      case State::size_line: {
        size_t nl = in.find('\n');
        size_t take = nl == std::string_view::npos ? in.size() : nl + 1;
        if (line_.size() + take > kMaxLine + 2) return bad_size("chunk size line too long");
        line_.append(in.data(), take);
        in.remove_prefix(take);
        if (nl == std::string_view::npos) break;
        if (line_.size() < 2 || line_[line_.size() - 2] != '\r')
          return bad_request("chunk size line not terminated by CRLF");
        std::string line = std::move(line_);
        line_.clear();
        line.resize(line.size() - 2);
        RETURN_IF_ERROR(on_size_line(line));
        break;
      }
      case State::data: {
        size_t n = static_cast<size_t>(std::min<uint64_t>(chunk_left_, in.size()));
        out->append(in.data(), n);
        if (chunk_hash_) chunk_hash_->update(in.data(), n);
        decoded_ += n;
        chunk_left_ -= n;
        in.remove_prefix(n);
        if (chunk_left_ == 0) {
          RETURN_IF_ERROR(end_chunk());
          state_ = State::data_crlf;
        }
        break;
      }
      case State::data_crlf: {
        // line_ holds the part of "\r\n" already seen.
        char expect = line_.empty() ? '\r' : '\n';
        if (in.front() != expect) return bad_request("chunk data not followed by CRLF");
        in.remove_prefix(1);
        if (expect == '\r') {
          line_.push_back('\r');  // line_ was empty
        } else {
          line_.clear();
          state_ = State::size_line;
        }
        break;
      }
      case State::trailer: {
        // Lines end in CRLF; a bare LF is tolerated here.
        size_t nl = in.find('\n');
        size_t take = nl == std::string_view::npos ? in.size() : nl + 1;
        if (line_.size() + take > kMaxLine + 2) return bad_request("trailer line too long");
        line_.append(in.data(), take);
        in.remove_prefix(take);
        if (nl == std::string_view::npos) break;
        std::string line = std::move(line_);
        line_.clear();
        line.pop_back();
        if (!line.empty() && line.back() == '\r') line.pop_back();
        RETURN_IF_ERROR(on_trailer_line(line));
        break;
      }
      case State::done:
        return bad_request("unexpected data after the end of the aws-chunked body");
    }
  }
  return ok_status();
}

Status AwsChunkedDecoder::on_size_line(std::string_view line) {
  size_t semi = line.find(';');
  std::string_view size = trim(line.substr(0, semi));
  std::string_view ext = semi == std::string_view::npos ? std::string_view() : line.substr(semi + 1);
  if (size.empty() || size.size() > 16) return bad_size("invalid chunk size");
  uint64_t n = 0;
  for (char c : size) {
    int v = hexval(c);
    if (v < 0) return bad_size("invalid chunk size");
    n = n * 16 + static_cast<uint64_t>(v);
  }

  chunk_sig_.clear();
  if (mode_ != Mode::unsigned_trailer) {
    // Extensions: ";chunk-signature=<hex>" (others ignored).
    while (!ext.empty()) {
      size_t next = ext.find(';');
      std::string_view e = trim(ext.substr(0, next));
      ext = next == std::string_view::npos ? std::string_view() : ext.substr(next + 1);
      size_t eq = e.find('=');
      if (eq == std::string_view::npos) continue;
      if (trim(e.substr(0, eq)) == "chunk-signature") {
        std::string_view sig = trim(e.substr(eq + 1));
        if (!is_sig(sig)) return bad_signature("malformed chunk-signature");
        chunk_sig_ = lower(sig);
      }
    }
    if (chunk_sig_.empty()) return bad_signature("missing chunk-signature");
    chunk_hash_ = make_hasher(HashAlgo::sha256);
  }

  chunk_left_ = n;
  if (n == 0) {
    last_chunk_ = true;
    RETURN_IF_ERROR(end_chunk());
    state_ = State::trailer;
  } else {
    state_ = State::data;
  }
  return ok_status();
}

Status AwsChunkedDecoder::end_chunk() {
  if (mode_ == Mode::unsigned_trailer) return ok_status();
  std::string expected = chunk_signature_for_hash(auth_.signing_key, auth_.amz_date, auth_.scope,
                                                  prev_sig_, hex_encode(chunk_hash_->digest()));
  chunk_hash_.reset();
  if (!sig_equal(expected, chunk_sig_))
    return bad_signature(
        "The request signature we calculated does not match the signature you provided "
        "(aws-chunked chunk signature).");
  prev_sig_ = std::move(expected);
  return ok_status();
}

Status AwsChunkedDecoder::on_trailer_line(std::string_view line) {
  if (line.empty()) {
    RETURN_IF_ERROR(end_trailer());
    state_ = State::done;
    return ok_status();
  }
  if (mode_ == Mode::signed_chunks)
    return bad_request("trailing headers are not allowed with STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return bad_request("malformed trailer line");
  std::string name = lower(trim(line.substr(0, colon)));
  std::string_view value = trim(line.substr(colon + 1));
  if (name.empty()) return bad_request("malformed trailer line");
  if (name == "x-amz-trailer-signature") {
    if (mode_ == Mode::unsigned_trailer) return ok_status();  // nothing to check it against
    if (!trailer_sig_.empty()) return bad_request("duplicate x-amz-trailer-signature");
    if (!is_sig(value)) return bad_signature("malformed x-amz-trailer-signature");
    trailer_sig_ = lower(value);
    return ok_status();
  }
  if (trailers_.size() >= kMaxTrailers) return bad_request("too many trailing headers");
  trailer_block_ += name;
  trailer_block_ += ':';
  trailer_block_ += value;
  trailer_block_ += '\n';
  if (trailer_block_.size() > kMaxTrailerBytes) return bad_request("trailing headers too large");
  trailers_.emplace_back(std::move(name), std::string(value));
  return ok_status();
}

Status AwsChunkedDecoder::end_trailer() {
  if (mode_ != Mode::signed_chunks_trailer) return ok_status();
  if (trailers_.empty() && trailer_sig_.empty()) return ok_status();  // no trailer sent
  if (trailer_sig_.empty()) return bad_signature("missing x-amz-trailer-signature");
  std::string expected =
      trailer_signature(auth_.signing_key, auth_.amz_date, auth_.scope, prev_sig_, trailer_block_);
  if (!sig_equal(expected, trailer_sig_))
    return bad_signature(
        "The request signature we calculated does not match the signature you provided "
        "(trailer signature).");
  return ok_status();
}

}  // namespace reservoir::s3
