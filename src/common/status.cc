#include "common/status.h"

#include <cstring>

namespace reservoir {

const char* code_name(Code c) {
  switch (c) {
    case Code::ok: return "ok";
    case Code::not_found: return "not_found";
    case Code::already_exists: return "already_exists";
    case Code::invalid_argument: return "invalid_argument";
    case Code::failed_precondition: return "failed_precondition";
    case Code::unavailable: return "unavailable";
    case Code::permission_denied: return "permission_denied";
    case Code::unauthenticated: return "unauthenticated";
    case Code::resource_exhausted: return "resource_exhausted";
    case Code::io_error: return "io_error";
    case Code::unimplemented: return "unimplemented";
    case Code::aborted: return "aborted";
    case Code::internal: return "internal";
  }
  return "unknown";
}

std::string Status::to_string() const {
  if (ok()) return "ok";
  return std::string(code_name(code_)) + ": " + msg_;
}

Status errno_status(const std::string& what, int err) {
  std::string m = what + ": " + std::strerror(err);
  switch (err) {
    case ENOENT: return not_found(m);
    case EEXIST: return already_exists(m);
    case ENOSPC:
    case EDQUOT: return resource_exhausted(m);
    case EACCES:
    case EPERM: return permission_denied(m);
    case ENOTDIR:
    case EISDIR:
    case ENAMETOOLONG: return invalid_argument(m);
    default: return io_error(m);
  }
}

}  // namespace reservoir
