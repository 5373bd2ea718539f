#include "ufs/local_ufs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/fileio.h"
#include "common/hash.h"
#include "common/json_text.h"

namespace reservoir::ufs {

namespace {

constexpr const char* kMetaDir = ".reservoir-meta";
constexpr const char* kTmpDir = ".reservoir-tmp";

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { if (fd_ >= 0) ::close(fd_); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { int f = fd_; fd_ = -1; return f; }
  void reset(int fd) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

class FileSource : public Source {
 public:
  FileSource(int fd, uint64_t left) : fd_(fd), left_(left) {}
  Result<size_t> read(char* buf, size_t n) override {
    size_t want = static_cast<size_t>(std::min<uint64_t>(n, left_));
    if (want == 0) return size_t{0};
    ssize_t r;
    do { r = ::read(fd_.get(), buf, want); } while (r < 0 && errno == EINTR);
    if (r < 0) return errno_status("read", errno);
    left_ -= static_cast<uint64_t>(r);
    return static_cast<size_t>(r);
  }

 private:
  Fd fd_;
  uint64_t left_;
};

nlohmann::json meta_to_json(const ObjectInfo& m) {
  nlohmann::json j;
  j["size"] = m.size;
  j["etag"] = m.etag;
  j["content_type"] = m.content_type;
  j["headers"] = m.headers;
  j["user_meta"] = m.user_meta;
  j["tags"] = m.tags;
  j["mtime_ms"] = m.mtime_ms;
  return j;
}

class LocalUfs : public UnderStore {
 public:
  explicit LocalUfs(std::string root) : root_(std::move(root)) {}

  std::string uri() const override { return "file://" + root_; }

  Status check_path(const std::string& path) const override {
    if (path.empty()) return invalid_argument("empty path");
    size_t start = 0;
    while (start <= path.size()) {
      size_t end = path.find('/', start);
      if (end == std::string::npos) end = path.size();
      std::string_view seg(path.data() + start, end - start);
      // A trailing '/' is a folder marker (an empty object kept as a directory).
      if (seg.empty() && start == path.size() && start > 0 && path.find('/') < path.size() - 1) break;
      if (seg.empty())
        return invalid_argument("the key has an empty path segment ('//'), which a file:// under store cannot hold");
      if (seg == "." || seg == "..")
        return invalid_argument("the key has a '.' or '..' path segment, which a file:// under store cannot hold");
      if (seg.size() > 255) return invalid_argument("a path segment of the key is longer than 255 bytes");
      if (seg.find('\0') != std::string_view::npos) return invalid_argument("the key contains a NUL byte");
      if ((start == 0 && seg.rfind(".reservoir-", 0) == 0) || seg == ".reservoir-dir")
        return invalid_argument("reserved name");
      start = end + 1;
    }
    return ok_status();
  }

  Status check_put(const std::string& path, uint64_t size) const override {
    RETURN_IF_ERROR(check_path(path));
    if (is_marker(path) && size > 0)
      return invalid_argument("a key ending in '/' (a folder marker) must be empty on a file:// under store");
    return ok_status();
  }

  static bool is_marker(const std::string& path) { return !path.empty() && path.back() == '/'; }

  Result<ObjectInfo> marker_info(const std::string& path) {
    struct stat st;
    if (::stat(data_path(path).c_str(), &st) != 0) return absent_or_error("stat " + path, errno);
    if (!S_ISDIR(st.st_mode) || ::stat(meta_path(path).c_str(), &st) != 0) return not_found(path + ": no such object");
    ObjectInfo info;
    info.path = path;
    info.size = 0;
    info.mtime_ms = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
    load_sidecar(path, info);
    return info;
  }

  Status put_marker(const std::string& path, Source& src, uint64_t size, const ObjectInfo& meta) {
    char c;
    auto r = src.read(&c, 1);
    if (!r.ok()) return r.status();
    if (size != 0 || *r != 0)
      return invalid_argument("a key ending in '/' (a folder marker) must be empty on a file:// under store");
    std::shared_lock tree(tree_mu_);  // no pruning of the directories made here until done
    std::error_code ec;
    std::filesystem::create_directories(data_path(path), ec);
    if (ec) {
      if (ec == std::errc::not_a_directory || ec == std::errc::file_exists)
        return failed_precondition(fmt::format("cannot store '{}': a prefix of it is already an object in {}", path, uri()));
      return io_error(fmt::format("mkdir {}: {}", path, ec.message()));
    }
    ObjectInfo m = meta;
    m.size = 0;
    RETURN_IF_ERROR(write_sidecar(path, m));
    fsync_dir(parent(data_path(path.substr(0, path.size() - 1))));
    return ok_status();
  }

  Result<ObjectInfo> head(const std::string& path) override {
    RETURN_IF_ERROR(check_path(path));
    if (is_marker(path)) return marker_info(path);
    struct stat st;
    if (::stat(data_path(path).c_str(), &st) != 0) return absent_or_error("stat " + path, errno);
    if (!S_ISREG(st.st_mode)) return not_found(path + " is not an object");
    ObjectInfo info = file_info(path, st);
    load_sidecar(path, info, &st);
    return info;
  }

  static ObjectInfo file_info(const std::string& path, const struct stat& st) {
    ObjectInfo info;
    info.path = path;
    info.size = static_cast<uint64_t>(st.st_size);
    info.mtime_ms = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
    return info;
  }

  // The data file is opened first, and its metadata taken from the sidecar
  // only if the sidecar names that very file (its inode): a put renames a
  // new file into place after writing the new sidecar, so a head() and a
  // get() in turn could pair one version's ETag with another's bytes.
  Result<OpenedObject> open_read(const std::string& path, uint64_t offset, uint64_t length) override {
    RETURN_IF_ERROR(check_path(path));
    if (is_marker(path)) return UnderStore::open_read(path, offset, length);
    for (int attempt = 0;; ++attempt) {
      Fd fd;
      struct stat st;
      RETURN_IF_ERROR(open_data(path, fd, st));
      if (!S_ISREG(st.st_mode)) return not_found(path + " is not an object");
      OpenedObject o;
      o.info = file_info(path, st);
      // A put between its sidecar and its rename: look again (then the
      // file's own size and mtime make its ETag, which matches no other).
      if (!load_sidecar(path, o.info, &st) && attempt < 3) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      auto src = source_at(fd, o.info.size, offset, length);
      if (!src.ok()) return src.status();
      o.src = std::move(src.value());
      return o;
    }
  }

  Result<std::unique_ptr<Source>> get(const std::string& path, uint64_t offset, uint64_t length) override {
    RETURN_IF_ERROR(check_path(path));
    if (is_marker(path)) {
      auto info = marker_info(path);
      if (!info.ok()) return info.status();
      return std::unique_ptr<Source>(std::make_unique<StringSource>(""));
    }
    Fd fd;
    struct stat st;
    RETURN_IF_ERROR(open_data(path, fd, st));
    return source_at(fd, static_cast<uint64_t>(st.st_size), offset, length);
  }

  // Opens the object's data file and stats the descriptor.
  Status open_data(const std::string& path, Fd& fd, struct stat& st) {
    fd.reset(::open(data_path(path).c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return absent_or_error("open " + path, errno);
    if (::fstat(fd.get(), &st) != 0) return errno_status("fstat", errno);
    return ok_status();
  }

  // The bytes [offset, offset + length) of an open file of `size` bytes (clamped).
  static Result<std::unique_ptr<Source>> source_at(Fd& fd, uint64_t size, uint64_t offset, uint64_t length) {
    if (offset > size) offset = size;
    if (::lseek(fd.get(), static_cast<off_t>(offset), SEEK_SET) < 0) return errno_status("lseek", errno);
    return std::unique_ptr<Source>(std::make_unique<FileSource>(fd.release(), std::min<uint64_t>(length, size - offset)));
  }

  Status put(const std::string& path, Source& src, uint64_t size, const ObjectInfo& meta) override {
    RETURN_IF_ERROR(check_path(path));
    if (is_marker(path)) return put_marker(path, src, size, meta);
    std::string tmp = tmp_path();
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (fd.get() < 0) return errno_status("create " + tmp, errno);
    std::vector<char> buf(1 << 20);
    uint64_t copied = 0;
    for (;;) {
      auto r = src.read(buf.data(), buf.size());
      if (!r.ok()) { ::unlink(tmp.c_str()); return r.status(); }
      if (*r == 0) break;
      Status st = write_fully(fd.get(), buf.data(), *r, "under-store file");
      if (!st.ok()) { ::unlink(tmp.c_str()); return st; }
      copied += *r;
    }
    if (copied != size) {
      ::unlink(tmp.c_str());
      return internal_error(fmt::format("source of {} gave {} bytes, expected {}", path, copied, size));
    }
    if (::fsync(fd.get()) != 0) { int e = errno; ::unlink(tmp.c_str()); return errno_status("fsync", e); }
    struct stat written;
    if (::fstat(fd.get(), &written) != 0) { int e = errno; ::unlink(tmp.c_str()); return errno_status("fstat", e); }
    // Sidecar first: a reader that sees the new data also sees its metadata
    // (which names the file by its inode: see open_read).
    ObjectInfo m = meta;
    m.size = size;
    Status st;
    {
      // A DELETE prunes empty directories: not between the mkdir and the rename.
      std::shared_lock tree(tree_mu_);
      st = make_parents(data_path(path));
      if (st.ok()) st = write_sidecar(path, m, &written);
      if (st.ok() && ::rename(tmp.c_str(), data_path(path).c_str()) != 0) {
        st = rename_error(path, errno);
        ::unlink(meta_path(path).c_str());
      }
    }
    if (!st.ok()) {
      ::unlink(tmp.c_str());
      std::unique_lock tree(tree_mu_);
      prune_empty_meta_parents(path);
      return st;
    }
    fsync_dir(parent(data_path(path)));
    return ok_status();
  }

  Status remove(const std::string& path) override {
    RETURN_IF_ERROR(check_path(path));
    if (is_marker(path)) {
      ::unlink(meta_path(path).c_str());
      std::unique_lock tree(tree_mu_);
      prune_empty_parents(path);
      return ok_status();
    }
    if (::unlink(data_path(path).c_str()) != 0 && errno != ENOENT && errno != ENOTDIR) {
      if (errno == EISDIR) return ok_status();
      return errno_status("unlink " + path, errno);
    }
    ::unlink(meta_path(path).c_str());
    std::unique_lock tree(tree_mu_);
    prune_empty_parents(path);
    return ok_status();
  }

  Result<ListPage> list(const std::string& prefix, const std::string& start_after, size_t max) override {
    ListPage page;
    Status st = walk("", prefix, start_after, max, page);
    if (!st.ok()) return st;
    return page;
  }

  Status make_dir(const std::string& path) override {
    RETURN_IF_ERROR(check_path(path));
    std::shared_lock tree(tree_mu_);
    std::error_code ec;
    std::filesystem::create_directories(data_path(path), ec);
    if (ec) return io_error(fmt::format("mkdir {}: {}", path, ec.message()));
    return ok_status();
  }

  Status remove_dir(const std::string& path) override {
    RETURN_IF_ERROR(check_path(path));
    std::unique_lock tree(tree_mu_);
    std::error_code ec;
    std::filesystem::remove_all(root_ + "/" + kMetaDir + "/" + path, ec);
    if (::rmdir(data_path(path).c_str()) != 0 && errno != ENOENT) {
      if (errno == ENOTEMPTY || errno == EEXIST) return failed_precondition(path + " is not empty in the under store");
      return errno_status("rmdir " + path, errno);
    }
    return ok_status();
  }

  Result<bool> dir_exists(const std::string& path) override {
    RETURN_IF_ERROR(check_path(path));
    struct stat st;
    if (::stat(data_path(path).c_str(), &st) != 0) return false;
    return S_ISDIR(st.st_mode);
  }

  Result<std::vector<std::string>> list_dirs() override {
    std::vector<std::string> out;
    DIR* d = ::opendir(root_.c_str());
    if (!d) return errno_status("opendir " + root_, errno);
    while (auto* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n == "." || n == ".." || n.rfind(".reservoir-", 0) == 0) continue;
      struct stat st;
      if (::stat((root_ + "/" + n).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) out.push_back(n);
    }
    ::closedir(d);
    std::sort(out.begin(), out.end());
    return out;
  }

  Status init() {
    std::error_code ec;
    for (const char* sub : {"", kMetaDir, kTmpDir}) {
      std::filesystem::create_directories(root_ + "/" + sub, ec);
      if (ec) return io_error(fmt::format("cannot create {}/{}: {}", root_, sub, ec.message()));
    }
    // Leftovers of uploads interrupted by a crash.
    for (auto& e : std::filesystem::directory_iterator(root_ + "/" + kTmpDir, ec)) std::filesystem::remove(e.path(), ec);
    return ok_status();
  }

 private:
  std::string data_path(const std::string& p) const { return root_ + "/" + p; }
  // The sidecar of a folder marker ("a/b/") is a file inside its directory.
  std::string meta_path(const std::string& p) const {
    return root_ + "/" + kMetaDir + "/" + p + (is_marker(p) ? ".reservoir-dir" : "");
  }
  static std::string parent(const std::string& p) { return p.substr(0, p.rfind('/')); }

  std::string tmp_path() {
    static std::atomic<uint64_t> counter{0};
    static const uint64_t salt = std::random_device{}();
    return fmt::format("{}/{}/{:x}-{:x}", root_, kTmpDir, salt, counter.fetch_add(1));
  }

  Status rename_error(const std::string& path, int err) {
    if (err == ENOTDIR || err == EISDIR || err == EEXIST || err == ENOTEMPTY)
      return failed_precondition(fmt::format(
          "cannot store '{}' in {}: a prefix of it is already an object, or it is already a prefix of other objects", path, uri()));
    return errno_status("rename into " + path, err);
  }

  Status make_parents(const std::string& file) {
    std::error_code ec;
    std::filesystem::create_directories(parent(file), ec);
    if (ec) {
      if (ec == std::errc::not_a_directory || ec == std::errc::file_exists)
        return failed_precondition(fmt::format("cannot store '{}': a prefix of it is already an object in {}", file.substr(root_.size() + 1), uri()));
      return io_error(fmt::format("mkdir {}: {}", parent(file), ec.message()));
    }
    return ok_status();
  }

  // `file`: the data file it describes (none for a folder marker), named by
  // its inode and its mtime (which a copy of the store keeps).
  Status write_sidecar(const std::string& path, const ObjectInfo& m, const struct stat* file = nullptr) {
    std::string mp = meta_path(path);
    RETURN_IF_ERROR(make_parents(mp));
    std::string tmp = tmp_path();
    {
      std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
      // Never throws: text that is not UTF-8 (refused at the S3 door, but
      // possible in records of older versions) is stored with U+FFFD.
      auto j = meta_to_json(m);
      if (file) {
        j["ino"] = static_cast<uint64_t>(file->st_ino);
        j["mtime_ns"] = mtime_ns(*file);
      }
      f << json_text(j);
      if (!f) return io_error("cannot write metadata sidecar for " + path);
    }
    if (::rename(tmp.c_str(), mp.c_str()) != 0) {
      int e = errno;
      ::unlink(tmp.c_str());
      return rename_error(path, e);
    }
    return ok_status();
  }

  static int64_t mtime_ns(const struct stat& st) {
    return static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  }

  // Fills info from the sidecar when it describes this data file `file` (its
  // size, and its inode or, in a copy of the store, its mtime); else a
  // stable ETag from size and mtime. False when the sidecar names another
  // file (a put under way).
  bool load_sidecar(const std::string& path, ObjectInfo& info, const struct stat* file = nullptr) {
    std::ifstream f(meta_path(path), std::ios::binary);
    bool other = false;
    if (f) {
      try {
        auto j = nlohmann::json::parse(f);
        uint64_t named = j.value("ino", uint64_t{0});
        other = file && named && named != static_cast<uint64_t>(file->st_ino) &&
                j.value("mtime_ns", int64_t{-1}) != mtime_ns(*file);
        if (!other && j.value("size", uint64_t{0}) == info.size) {
          info.etag = j.value("etag", "");
          info.content_type = j.value("content_type", "");
          info.headers = j.value("headers", std::map<std::string, std::string>{});
          info.user_meta = j.value("user_meta", std::map<std::string, std::string>{});
          info.tags = j.value("tags", std::vector<std::pair<std::string, std::string>>{});
          // A sidecar written by someone else may hold what no HTTP header
          // can (a line break would split the response): such values go.
          auto header_safe = [](const std::string& v) {
            return std::none_of(v.begin(), v.end(), [](char ch) {
              auto c = static_cast<unsigned char>(ch);
              return (c < 0x20 && c != '\t') || c == 0x7f;
            });
          };
          if (!header_safe(info.etag)) info.etag.clear();
          if (!header_safe(info.content_type)) info.content_type.clear();
          std::erase_if(info.headers, [&](const auto& kv) { return !header_safe(kv.first) || !header_safe(kv.second); });
          std::erase_if(info.user_meta, [&](const auto& kv) { return !header_safe(kv.first) || !header_safe(kv.second); });
          if (!info.etag.empty()) return true;
        }
      } catch (const std::exception&) {
      }
    }
    // Written by someone else: a stable ETag from size and mtime.
    info.etag = hex_encode(md5_raw(fmt::format("{}:{}:{}", path, info.size, info.mtime_ms)));
    return !other;
  }

  // A path below an existing object (ENOTDIR) is simply absent.
  static Status absent_or_error(const std::string& what, int err) {
    if (err == ENOTDIR || err == ENOENT) return not_found(what + ": no such object");
    return errno_status(what, err);
  }

  void prune_empty_meta_parents(const std::string& path) {
    std::string p = parent(path);
    while (p.find('/') != std::string::npos) {
      if (::rmdir(meta_path(p).c_str()) != 0) break;
      p = parent(p);
    }
  }

  void prune_empty_parents(const std::string& path) {
    // Keep the bucket directory itself (depth 1).
    std::string p = parent(path);
    while (p.find('/') != std::string::npos) {
      struct stat st;
      if (::stat(meta_path(p + "/").c_str(), &st) == 0) break;  // a folder marker keeps its directory
      if (::rmdir(data_path(p).c_str()) != 0) break;
      ::rmdir(meta_path(p).c_str());
      p = parent(p);
    }
  }

  // Depth-first walk in key order: a directory sorts as its name plus '/'.
  Status walk(const std::string& rel, const std::string& prefix, const std::string& start_after, size_t max,
              ListPage& page) {
    std::string dir = rel.empty() ? root_ : root_ + "/" + rel.substr(0, rel.size() - 1);
    DIR* d = ::opendir(dir.c_str());
    if (!d) {
      if (errno == ENOENT || errno == ENOTDIR) return ok_status();
      return errno_status("opendir " + dir, errno);
    }
    std::vector<std::pair<std::string, bool>> names;  // sort key, is_dir
    while (auto* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n == "." || n == "..") continue;
      if (rel.empty() && n.rfind(".reservoir-", 0) == 0) continue;
      bool is_dir = e->d_type == DT_DIR;
      if (e->d_type == DT_UNKNOWN) {
        struct stat st;
        if (::stat((dir + "/" + n).c_str(), &st) != 0) continue;
        is_dir = S_ISDIR(st.st_mode);
      }
      names.emplace_back(is_dir ? n + "/" : n, is_dir);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    for (auto& [name, is_dir] : names) {
      if (page.truncated) break;
      std::string full = rel + name;
      if (is_dir) {
        bool related = full.rfind(prefix, 0) == 0 || prefix.rfind(full, 0) == 0;
        if (!related) continue;
        if (start_after.size() && start_after > full && start_after.rfind(full, 0) != 0) continue;
        if (full.rfind(prefix, 0) == 0 && full > start_after) {
          struct stat st;
          if (::stat(meta_path(full).c_str(), &st) == 0) {
            if (page.entries.size() == max) {
              page.truncated = true;
              break;
            }
            auto info = marker_info(full);
            if (info.ok()) page.entries.push_back(std::move(info.value()));
          }
        }
        RETURN_IF_ERROR(walk(full, prefix, start_after, max, page));
      } else {
        if (full.rfind(prefix, 0) != 0 || full <= start_after) continue;
        if (page.entries.size() == max) {
          page.truncated = true;
          break;
        }
        auto info = head(full);
        if (!info.ok()) continue;
        page.entries.push_back(std::move(info.value()));
      }
    }
    return ok_status();
  }

  std::string root_;
  // Shared while directories are made and filled (put, markers), exclusive
  // while empty ones are removed: a DELETE of the last object in a
  // directory must not remove it under a PUT that just made it (whose
  // rename then failed with ENOENT).
  std::shared_mutex tree_mu_;
};

}  // namespace

Result<std::unique_ptr<UnderStore>> make_local_ufs(const std::string& root_dir) {
  std::error_code ec;
  std::filesystem::create_directories(root_dir, ec);
  std::string root = std::filesystem::absolute(root_dir, ec).lexically_normal().string();
  if (!root.empty() && root.back() == '/') root.pop_back();
  auto u = std::make_unique<LocalUfs>(root);
  RETURN_IF_ERROR(u->init());
  return std::unique_ptr<UnderStore>(std::move(u));
}

}  // namespace reservoir::ufs
