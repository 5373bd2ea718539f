#!/usr/bin/python3
"""A FUSE file system that loses what a power cut loses: every write not yet fsynced.

    /usr/bin/python3 tests/tools/powercut_fs.py BACKING MOUNTPOINT [--torn SEED]

Passes every call through to the directory BACKING, except that the bytes of write(2)
stay in this process's memory (as they would in the kernel's page cache) until fsync(2)
or fdatasync(2) of that file writes them to BACKING. Reads, and the size stat(2)
reports, see the unsynced bytes as well. Unmounting (`fusermount -u MOUNTPOINT`) is the
power cut: every write not fsynced by then is dropped, so BACKING is what a disk would
hold after the machine lost power at that moment. Start the program under test again on
BACKING to see what it recovers.

With --torn SEED, the cut instead writes a random half of the unsynced 4 KiB pages
(chosen with SEED), as a disk that had written some of them back: torn records.

The model is that of LazyFS: data is volatile until synced, names are not. create,
mkdir, rename, unlink, rmdir and truncate reach BACKING at once, so a missing fsync of
a directory is not caught. Syncs do not reach BACKING's disk (the cut is simulated; the
machine stays up). Every call holds one lock: meant for tests, not for speed.

Needs Debian's python3-fusepy (imported as `fusepy`) and /dev/fuse. Prints `mounted`
on stdout once MOUNTPOINT answers, and on exit a line
`cut: N files, M pages dropped, K pages written`."""

from __future__ import annotations

import argparse
import errno
import os
import random
import stat
import sys
import threading
import time

import fusepy

PAGE = 4096


class Volatile:
    """The unsynced state of one file (by its inode in BACKING): whole pages, the size."""

    def __init__(self, size: int):
        self.pages: dict[int, bytearray] = {}
        self.size = size


class PowercutFs(fusepy.Operations):
    use_ns = True
    lock = None  # not offered: the kernel keeps POSIX locks itself (RocksDB's LOCK file)

    def __init__(self, backing: str, torn_seed: int | None):
        self.backing = os.path.realpath(backing)
        self.torn_seed = torn_seed
        self.mu = threading.RLock()
        self.files: dict[int, Volatile] = {}  # inode -> unsynced state
        self.fh_ino: dict[int, int] = {}      # open fd in BACKING -> inode
        self.held: dict[int, int] = {}        # inode -> fd kept past close for the cut

    def _p(self, path: str) -> str:
        return self.backing + path

    def __call__(self, op, *args):
        with self.mu:
            try:
                return getattr(self, op)(*args)
            except OSError as e:
                raise fusepy.FuseOSError(e.errno or errno.EIO) from None

    # ---- the volatile layer

    def _vol(self, fh: int) -> Volatile:
        ino = self.fh_ino[fh]
        v = self.files.get(ino)
        if v is None:
            v = self.files[ino] = Volatile(os.fstat(fh).st_size)
        return v

    def _page(self, fh: int, v: Volatile, n: int) -> bytearray:
        page = v.pages.get(n)
        if page is None:
            page = bytearray(os.pread(fh, PAGE, n * PAGE))
            page.extend(bytes(PAGE - len(page)))
            v.pages[n] = page
        return page

    def _flush_pages(self, fh: int, v: Volatile, pages) -> None:
        for n in sorted(pages):
            end = min(PAGE, v.size - n * PAGE)
            if end > 0:
                os.pwrite(fh, bytes(v.pages[n][:end]), n * PAGE)

    # ---- file calls

    def getattr(self, path, fh=None):
        st = os.lstat(self._p(path))
        out = {k: getattr(st, k) for k in ("st_mode", "st_nlink", "st_uid", "st_gid", "st_size",
                                             "st_atime", "st_mtime", "st_ctime")}
        v = self.files.get(st.st_ino) if stat.S_ISREG(st.st_mode) else None
        if v is not None:
            out["st_size"] = v.size
        return out

    def open(self, path, flags):
        # Read-write whatever the caller asked: pages are read in before a
        # partial write, and fsync(2) of a read-only descriptor writes them out.
        flags = (flags & ~(os.O_ACCMODE | os.O_APPEND)) | os.O_RDWR | os.O_CLOEXEC
        fd = os.open(self._p(path), flags)
        self.fh_ino[fd] = os.fstat(fd).st_ino
        if flags & os.O_TRUNC:
            self._truncated(fd, 0)
        return fd

    def create(self, path, mode, fi=None):
        fd = os.open(self._p(path), os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
        self.fh_ino[fd] = os.fstat(fd).st_ino
        self._truncated(fd, 0)
        return fd

    def read(self, path, size, offset, fh):
        v = self.files.get(self.fh_ino[fh])
        if v is None:
            return os.pread(fh, size, offset)
        end = min(offset + size, v.size)
        out = bytearray()
        pos = offset
        while pos < end:
            n, skip = divmod(pos, PAGE)
            take = min(PAGE - skip, end - pos)
            page = v.pages.get(n)
            if page is not None:
                out += page[skip:skip + take]
            else:
                got = os.pread(fh, take, pos)
                out += got + bytes(take - len(got))  # a hole past BACKING's end
            pos += take
        return bytes(out)

    def write(self, path, data, offset, fh):
        v = self._vol(fh)
        pos, left = offset, memoryview(data)
        while left:
            n, skip = divmod(pos, PAGE)
            take = min(PAGE - skip, len(left))
            self._page(fh, v, n)[skip:skip + take] = left[:take]
            pos += take
            left = left[take:]
        v.size = max(v.size, offset + len(data))
        return len(data)

    def _truncated(self, fd: int, length: int) -> None:
        v = self.files.get(self.fh_ino[fd])
        os.ftruncate(fd, length)
        if v is None:
            return
        v.size = length
        last = length // PAGE
        for n in [n for n in v.pages if n >= last]:
            if n == last and length % PAGE:
                v.pages[n][length % PAGE:] = bytes(PAGE - length % PAGE)
            else:
                del v.pages[n]

    def truncate(self, path, length, fh=None):
        if fh is not None and fh in self.fh_ino:
            return self._truncated(fh, length)
        fd = os.open(self._p(path), os.O_WRONLY | os.O_CLOEXEC)
        try:
            self.fh_ino[fd] = os.fstat(fd).st_ino
            self._truncated(fd, length)
        finally:
            del self.fh_ino[fd]
            os.close(fd)

    def fsync(self, path, datasync, fh):
        ino = self.fh_ino[fh]
        v = self.files.pop(ino, None)
        if v is not None:
            self._flush_pages(fh, v, v.pages)
            os.ftruncate(fh, v.size)
        held = self.held.pop(ino, None)
        if held is not None:
            os.close(held)
        return 0

    def flush(self, path, fh):
        return 0  # close(2) makes nothing durable

    def release(self, path, fh):
        ino = self.fh_ino.pop(fh)
        if ino in self.files and ino not in self.held:
            self.held[ino] = fh  # unsynced: the cut may still write some of it
        else:
            os.close(fh)
        return 0

    # ---- names: at once

    def unlink(self, path):
        st = os.lstat(self._p(path))
        os.unlink(self._p(path))
        if st.st_nlink <= 1 and st.st_ino not in self.fh_ino.values():
            self.files.pop(st.st_ino, None)
            held = self.held.pop(st.st_ino, None)
            if held is not None:
                os.close(held)

    def rename(self, old, new):
        os.rename(self._p(old), self._p(new))

    def mkdir(self, path, mode):
        os.mkdir(self._p(path), mode)

    def rmdir(self, path):
        os.rmdir(self._p(path))

    def readdir(self, path, fh):
        return [".", ".."] + os.listdir(self._p(path))

    def chmod(self, path, mode):
        os.chmod(self._p(path), mode)

    def chown(self, path, uid, gid):
        os.chown(self._p(path), uid, gid)

    def utimens(self, path, times=None):
        os.utime(self._p(path), ns=times) if times else os.utime(self._p(path))

    def access(self, path, amode):
        if not os.access(self._p(path), amode):
            raise OSError(errno.EACCES, "access")

    def fsyncdir(self, path, datasync, fh):
        return 0

    def statfs(self, path):
        sv = os.statvfs(self._p(path))
        return {k: getattr(sv, k) for k in ("f_bavail", "f_bfree", "f_blocks", "f_bsize",
                                             "f_favail", "f_ffree", "f_files", "f_flag",
                                             "f_frsize", "f_namemax")}

    # ---- the cut

    def destroy(self, path):
        with self.mu:
            rnd = random.Random(self.torn_seed)
            dropped = written = 0
            for ino, v in sorted(self.files.items()):
                keep = [n for n in sorted(v.pages) if self.torn_seed is not None and rnd.random() < 0.5]
                written += len(keep)
                dropped += len(v.pages) - len(keep)
                fds = [fd for fd, i in self.fh_ino.items() if i == ino] + \
                    [fd for i, fd in self.held.items() if i == ino]
                if keep and fds:
                    self._flush_pages(fds[0], v, keep)
            print(f"cut: {len(self.files)} files, {dropped} pages dropped, {written} pages written",
                  flush=True)
            self.files.clear()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("backing")
    ap.add_argument("mountpoint")
    ap.add_argument("--torn", type=int, metavar="SEED", default=None,
                    help="the cut writes a random half of the unsynced pages")
    a = ap.parse_args()
    fs = PowercutFs(a.backing, a.torn)

    def announce():
        dev = os.stat(a.backing).st_dev
        for _ in range(500):
            if os.stat(a.mountpoint).st_dev != dev and os.path.ismount(a.mountpoint):
                print("mounted", flush=True)
                return
            time.sleep(0.01)

    threading.Thread(target=announce, daemon=True).start()
    fusepy.FUSE(fs, a.mountpoint, foreground=True, nothreads=False, big_writes=True,
                attr_timeout=0, entry_timeout=0, negative_timeout=0, fsname="powercut")
    return 0


if __name__ == "__main__":
    sys.exit(main())
