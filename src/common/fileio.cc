#include "common/fileio.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace reservoir {

Status write_fully(int fd, const char* data, size_t n, const char* what) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno_status(std::string("write ") + what, errno);
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return ok_status();
}

Status pwrite_fully(int fd, const char* data, size_t n, uint64_t off, const char* what) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, data, n, static_cast<off_t>(off));
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno_status(std::string("write ") + what, errno);
    }
    data += w;
    off += static_cast<uint64_t>(w);
    n -= static_cast<size_t>(w);
  }
  return ok_status();
}

void fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace reservoir
