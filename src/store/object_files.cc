#include "store/object_files.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include <fmt/format.h>

#include "common/fileio.h"
#include "common/hash.h"
#include "store/cache_space.h"
#include "store/sync_point.h"

namespace reservoir::store {

std::string inline_key(uint64_t id) { return fmt::format("i{:016x}", id); }

FileWriter::FileWriter(const ObjectFiles& files, KvIndex* index, uint64_t id, size_t inline_max, int tier,
                       CacheSpace* space, uint64_t reserved)
    : files_(files), index_(index), id_(id), inline_max_(index ? inline_max : 0), tier_(tier), space_(space),
      reserved_(reserved) {
  auto* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_md5(), nullptr);
  md5_ctx_ = ctx;
}

FileWriter::~FileWriter() {
  end_write();
  if (fd_ >= 0) ::close(fd_);
  if (spilled_ && !committed_) ::unlink(tmp_path_.c_str());
  EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(md5_ctx_));
  if (space_) space_->unreserve(tier_, reserved_);
}

Status FileWriter::spill() {
  tmp_path_ = files_.tmp_path(id_, tier_);
  final_path_ = files_.path(id_, tier_);
  fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) return errno_status("create cache file", errno);
  spilled_ = true;
  std::string pending;
  pending.swap(buf_);
  return write_fully(fd_, pending.data(), pending.size(), "cache file");
}

Status FileWriter::append(const char* data, size_t n) {
  crc_ = crc32c_extend(crc_, data, n);
  if (with_md5_) EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(md5_ctx_), data, n);
  size_ += n;
  if (!spilled_ && size_ <= inline_max_) {
    buf_.append(data, n);
    return ok_status();
  }
  if (!spilled_) RETURN_IF_ERROR(spill());
  RETURN_IF_ERROR(write_fully(fd_, data, n, "cache file"));
  // Large data: start the disk writing what has arrived so far, so that the
  // fsync of commit() waits for the last few MiB, not for the whole object
  // (the page cache would otherwise hold it all until then).
  constexpr uint64_t kWritebackStep = 8 << 20;
  if (size_ - flushed_ >= kWritebackStep) {
    (void)::sync_file_range(fd_, static_cast<off_t>(flushed_), static_cast<off_t>(size_ - flushed_),
                            SYNC_FILE_RANGE_WRITE);
    flushed_ = size_;
  }
  return ok_status();
}

std::string FileWriter::md5() {
  unsigned char buf[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(md5_ctx_), buf, &len);
  return std::string(reinterpret_cast<char*>(buf), len);
}

void FileWriter::end_write() {
  if (open_writes_) open_writes_->end(id_);
  open_writes_ = nullptr;
}

Status FileWriter::commit(bool sync, bool defer_inline) {
  if (!spilled_) {
    if (!index_) RETURN_IF_ERROR(spill());
    else {
      end_write();
      committed_ = true;
      if (size_ == 0) return ok_status();
      inline_pending_ = true;
      if (!defer_inline) RETURN_IF_ERROR(write_inline());
      counted();
      return ok_status();
    }
  }
  if (sync && ::fdatasync(fd_) != 0) return errno_status("fsync cache file", errno);
  ::close(fd_);
  fd_ = -1;
  if (::rename(tmp_path_.c_str(), final_path_.c_str()) != 0) return errno_status("rename cache file", errno);
  if (open_writes_ && !sync) {
    open_writes_->end_unsynced(id_, final_path_);  // the next sync point fsyncs it
    open_writes_ = nullptr;
  }
  end_write();
  committed_ = true;
  counted();
  if (sync) fsync_dir(final_path_.substr(0, final_path_.rfind('/')));
  return ok_status();
}

void FileWriter::counted() {
  if (!space_) return;
  // The data is counted as used from now on: its reservation goes (held to
  // the writer's end, a write going through to the under store counted twice).
  space_->add_data(tier_, size_);
  space_->unreserve(tier_, reserved_);
  reserved_ = 0;
}

void FileWriter::take_inline(KvBatch& b) {
  if (!inline_pending_) return;
  b.put(inline_key(id_), buf_);
  inline_pending_ = false;
}

Status FileWriter::write_inline() {
  if (!inline_pending_) return ok_status();
  KvBatch b;
  take_inline(b);
  Status st = index_->write(b, false);
  if (!st.ok()) inline_pending_ = true;
  return st;
}

std::string ObjectFiles::path(uint64_t id, int tier) const {
  return fmt::format("{}/{:02x}/{:016x}", dir(tier), id & 0xff, id);
}
std::string ObjectFiles::tmp_path(uint64_t id, int tier) const { return fmt::format("{}/tmp/{:016x}", dir(tier), id); }

Status ObjectFiles::init() {
  std::error_code ec;
  for (auto& d : dirs_) {
    for (int i = 0; i < 256; ++i) {
      std::string shard = fmt::format("{}/{:02x}", d, i);
      std::filesystem::create_directories(shard, ec);
      if (ec) return io_error(fmt::format("cannot create {}: {}", shard, ec.message()));
    }
    std::filesystem::create_directories(d + "/tmp", ec);
    for (auto& e : std::filesystem::directory_iterator(d + "/tmp", ec)) std::filesystem::remove(e.path(), ec);
  }
  return ok_status();
}

Result<int> ObjectFiles::open(uint64_t id, int tier) const {
  int fd = ::open(path(id, tier).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_status("open cache file", errno);
  return fd;
}

void ObjectFiles::remove(uint64_t id, int tier) const { ::unlink(path(id, tier).c_str()); }

}  // namespace reservoir::store
