// A test-only preload library that reports double closes.
//
// The end-to-end tests start the server with LD_PRELOAD=libclose_check.so and
// RESERVOIR_CLOSE_CHECK_LOG=FILE. close() of a descriptor that is not open
// (EBADF) means the program closed a number it no longer owned: a second
// close of the same number. When the number has been handed to a new file in
// between, that second close hits the new file (its owner then sees EBADF or
// writes into whatever opens next), so any EBADF from close() is a bug. Each
// one is appended to FILE with a backtrace; the tests fail when FILE exists.
// The unit tests run with RESERVOIR_CLOSE_CHECK_ABORT=1 instead: the
// backtrace goes to stderr and the process aborts.
//
// Symbols of the backtrace: addr2line -f -C -e build/release/reservoir ADDR
// (the offsets in parentheses are relative to the binary).

#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

extern "C" int close(int fd) {
  long r = syscall(SYS_close, fd);
  if (r == 0) return 0;
  int err = errno;
  if (err != EBADF) {
    errno = err;
    return -1;
  }
  const char* path = getenv("RESERVOIR_CLOSE_CHECK_LOG");
  const char* stop = getenv("RESERVOIR_CLOSE_CHECK_ABORT");
  bool abort_now = stop && *stop && *stop != '0';
  if (abort_now || (path && *path)) {
    int log = abort_now ? 2
                        : static_cast<int>(syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644));
    if (log >= 0) {
      char head[96];
      int n = snprintf(head, sizeof head, "close(%d): EBADF, a descriptor closed twice; backtrace:\n", fd);
      if (n > 0) (void)!write(log, head, static_cast<size_t>(n));
      void* frames[48];
      backtrace_symbols_fd(frames, backtrace(frames, 48), log);
      (void)!write(log, "\n", 1);
      if (log != 2) syscall(SYS_close, log);
    }
    if (abort_now) abort();
  }
  errno = err;
  return -1;
}
