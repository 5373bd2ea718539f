// Status and Result<T>: errors as values at every module boundary.
//
// A Status carries one code from the table below and a human message. The code
// says what the caller should do next (retry, fix the state, give up); the S3
// layer maps codes to S3 XML errors in s3/errors.cc.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace reservoir {

enum class Code {
  ok = 0,
  not_found,            // the thing does not exist (NoSuchKey, ENOENT)
  already_exists,       // create of an existing thing
  invalid_argument,     // bad input from the caller; do not retry
  failed_precondition,  // state must be fixed first (non-empty bucket, If-Match)
  unavailable,          // transient: retry with backoff (503, reset, timeout)
  permission_denied,    // 403 from a backend, bad credentials: park
  unauthenticated,      // request signature problems
  resource_exhausted,   // quota/budget full
  io_error,             // local disk failure
  unimplemented,        // operation not supported
  aborted,              // superseded by a newer operation (per-key ordering)
  internal,             // bug or unexpected state
};

const char* code_name(Code c);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string msg) : code_(code), msg_(std::move(msg)) {}
  // `s3_code` names the exact S3 error (e.g. "SignatureDoesNotMatch") when the
  // generic mapping of `code` is not precise enough. Must be a string literal.
  Status(Code code, std::string msg, const char* s3_code)
      : code_(code), msg_(std::move(msg)), s3_code_(s3_code) {}

  static Status ok_status() { return {}; }
  bool ok() const { return code_ == Code::ok; }
  Code code() const { return code_; }
  const std::string& message() const { return msg_; }
  std::string to_string() const;
  // True when the same call may succeed later without any change of state.
  bool retryable() const { return code_ == Code::unavailable; }
  const char* s3_code() const { return s3_code_; }

 private:
  Code code_ = Code::ok;
  std::string msg_;
  const char* s3_code_ = nullptr;
};

inline Status ok_status() { return {}; }
inline Status not_found(std::string m) { return {Code::not_found, std::move(m)}; }
inline Status already_exists(std::string m) { return {Code::already_exists, std::move(m)}; }
inline Status invalid_argument(std::string m) { return {Code::invalid_argument, std::move(m)}; }
inline Status failed_precondition(std::string m) { return {Code::failed_precondition, std::move(m)}; }
inline Status unavailable(std::string m) { return {Code::unavailable, std::move(m)}; }
inline Status permission_denied(std::string m) { return {Code::permission_denied, std::move(m)}; }
inline Status io_error(std::string m) { return {Code::io_error, std::move(m)}; }
inline Status internal_error(std::string m) { return {Code::internal, std::move(m)}; }
inline Status unimplemented(std::string m) { return {Code::unimplemented, std::move(m)}; }
inline Status resource_exhausted(std::string m) { return {Code::resource_exhausted, std::move(m)}; }
inline Status aborted(std::string m) { return {Code::aborted, std::move(m)}; }

// Status from errno after a failed system call, with what was being done.
Status errno_status(const std::string& what, int err);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}                // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {          // NOLINT
    assert(!std::get<Status>(v_).ok());
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace reservoir

#define RSV_CONCAT_INNER(a, b) a##b
#define RSV_CONCAT(a, b) RSV_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function when `expr` is not ok.
#define RETURN_IF_ERROR(expr)                 \
  do {                                        \
    ::reservoir::Status _st = (expr);         \
    if (!_st.ok()) return _st;                \
  } while (0)

// Declares `lhs` from a Result-returning `expr`, or returns its Status.
#define ASSIGN_OR_RETURN(lhs, expr)                              \
  auto RSV_CONCAT(_res_, __LINE__) = (expr);                     \
  if (!RSV_CONCAT(_res_, __LINE__).ok())                         \
    return RSV_CONCAT(_res_, __LINE__).status();                 \
  lhs = std::move(RSV_CONCAT(_res_, __LINE__)).value()
