// Small POSIX file helpers shared by the cache store and the local under store.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/status.h"

namespace reservoir {

// Writes all n bytes (retrying short writes and EINTR); `what` names the file
// in the error.
Status write_fully(int fd, const char* data, size_t n, const char* what);
// The same at offset `off` (pwrite).
Status pwrite_fully(int fd, const char* data, size_t n, uint64_t off, const char* what);
// fsync of a directory, so that a rename or create in it is durable.
void fsync_dir(const std::string& dir);

}  // namespace reservoir
