#include "store/journal_index.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <future>
#include <mutex>
#include <random>
#include <system_error>

#include <fmt/format.h>

#include "common/fileio.h"
#include "common/hash.h"
#include "common/log.h"

namespace reservoir::store {

namespace {

// Two header slots of a page each, written in turn (a torn write spoils only
// the newer one): magic, generation, ring size, salt, start offset, start
// sequence, CRC32C. Records start after them.
constexpr char kMagic[8] = {'R', 'S', 'V', 'J', 'R', 'N', '0', '2'};
constexpr uint64_t kPage = 4096;
constexpr uint64_t kHeaderSlot = kPage;
constexpr uint64_t kHeaderBlock = kJournalFirstRecord;
static_assert(kHeaderBlock == 2 * kHeaderSlot);
constexpr size_t kHeaderBytes = 8 + 5 * 8 + 4;
// A record: u32 payload length, u32 CRC32C, u64 sequence, payload, padding to 8.
// The CRC covers the ring's current salt, the sequence, the length and the
// payload: bytes of an earlier lap (object data included) never pass for a
// record of this one.
constexpr size_t kRecordHead = 16;

void put_u32(std::string& s, uint32_t v) { s.append(reinterpret_cast<const char*>(&v), 4); }
void put_u64(std::string& s, uint64_t v) { s.append(reinterpret_cast<const char*>(&v), 8); }
uint32_t get_u32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t get_u64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

struct Header {
  uint64_t gen = 0, bytes = 0, salt = 0, start = 0, start_seq = 0;
};

std::string encode_header(const Header& h) {
  std::string s(kMagic, sizeof kMagic);
  put_u64(s, h.gen);
  put_u64(s, h.bytes);
  put_u64(s, h.salt);
  put_u64(s, h.start);
  put_u64(s, h.start_seq);
  put_u32(s, crc32c(s));
  s.resize(kHeaderSlot, '\0');
  return s;
}

std::optional<Header> decode_slot(std::string_view s) {
  if (s.size() < kHeaderBytes || std::memcmp(s.data(), kMagic, sizeof kMagic) != 0) return std::nullopt;
  if (crc32c(s.substr(0, kHeaderBytes - 4)) != get_u32(s.data() + kHeaderBytes - 4)) return std::nullopt;
  Header h;
  h.gen = get_u64(s.data() + 8);
  h.bytes = get_u64(s.data() + 16);
  h.salt = get_u64(s.data() + 24);
  h.start = get_u64(s.data() + 32);
  h.start_seq = get_u64(s.data() + 40);
  return h;
}

// The valid slot of the higher generation.
std::optional<Header> decode_header(std::string_view block) {
  auto a = decode_slot(block.substr(0, kHeaderSlot));
  auto b = decode_slot(block.substr(kHeaderSlot, kHeaderSlot));
  if (a && b) return a->gen > b->gen ? a : b;
  return a ? a : b;
}

// Both slots were written (they carry the magic) and neither is valid: not
// what a torn write leaves (it spoils one slot), so the ring is damaged.
bool headers_damaged(std::string_view block) {
  auto magic = [&](uint64_t at) { return std::memcmp(block.data() + at, kMagic, sizeof kMagic) == 0; };
  return magic(0) && magic(kHeaderSlot) && !decode_header(block);
}

uint32_t record_crc(uint64_t salt, uint64_t seq, std::string_view payload) {
  std::string head;
  put_u64(head, salt);
  put_u64(head, seq);
  put_u32(head, static_cast<uint32_t>(payload.size()));
  return crc32c_extend(crc32c(head), payload.data(), payload.size());
}

std::string encode_payload(const KvBatch& batch) {
  std::string payload;
  size_t n = 4;
  for (auto& [k, v] : batch.ops) n += 9 + k.size() + (v ? v->size() : 0);
  payload.reserve(n);
  put_u32(payload, static_cast<uint32_t>(batch.ops.size()));
  for (auto& [k, v] : batch.ops) {
    payload.push_back(v ? 'P' : 'D');
    put_u32(payload, static_cast<uint32_t>(k.size()));
    payload += k;
    if (v) {
      put_u32(payload, static_cast<uint32_t>(v->size()));
      payload += *v;
    }
  }
  return payload;
}

uint64_t record_size(size_t payload) { return (kRecordHead + payload + 7) / 8 * 8; }

std::string encode_record(uint64_t salt, uint64_t seq, const std::string& payload) {
  std::string rec;
  rec.reserve(record_size(payload.size()));
  put_u32(rec, static_cast<uint32_t>(payload.size()));
  put_u32(rec, record_crc(salt, seq, payload));
  put_u64(rec, seq);
  rec += payload;
  rec.resize(record_size(payload.size()), '\0');
  return rec;
}

std::optional<KvBatch> decode_payload(std::string_view p) {
  auto take = [&](size_t n) -> std::optional<std::string_view> {
    if (p.size() < n) return std::nullopt;
    auto r = p.substr(0, n);
    p.remove_prefix(n);
    return r;
  };
  auto u32 = [&]() -> std::optional<uint32_t> {
    auto r = take(4);
    if (!r) return std::nullopt;
    return get_u32(r->data());
  };
  auto count = u32();
  if (!count) return std::nullopt;
  KvBatch b;
  for (uint32_t i = 0; i < *count; ++i) {
    auto kind = take(1);
    auto klen = u32();
    if (!kind || !klen) return std::nullopt;
    auto key = take(*klen);
    if (!key) return std::nullopt;
    if ((*kind)[0] == 'D') {
      b.del(std::string(*key));
      continue;
    }
    auto vlen = u32();
    if (!vlen) return std::nullopt;
    auto val = take(*vlen);
    if (!val) return std::nullopt;
    b.put(std::string(*key), std::string(*val));
  }
  if (!p.empty()) return std::nullopt;
  return b;
}

Status write_at(int fd, const std::string& data, uint64_t off) {
  return pwrite_fully(fd, data.data(), data.size(), off, "index journal");
}

void log_given_up(const Status& why) {
  LOG_ERROR("index journal: {}; synced writes go to the index's own log from now on", why.to_string());
}

bool pread_fully(int fd, char* buf, size_t n, uint64_t off) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, buf + done, n - done, static_cast<off_t>(off + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    done += static_cast<size_t>(r);
  }
  return true;
}

uint64_t random_salt() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

KvBatch with_seq(KvBatch b, uint64_t seq) {
  b.put(kJournalSeqKey, std::to_string(seq));
  return b;
}

// The ring's two halves: [kHeaderBlock, mid) and [mid, end). Records never
// straddle them; the chain of records continues from the end of one half at
// the start of the other.
struct Layout {
  uint64_t mid, end;
  explicit Layout(uint64_t bytes) {
    uint64_t half = (bytes - kHeaderBlock) / 2 / kPage * kPage;
    mid = kHeaderBlock + half;
    end = mid + half;
  }
  uint64_t half_end(uint64_t off) const { return off < mid ? mid : end; }
  uint64_t other_half(uint64_t off) const { return off < mid ? mid : kHeaderBlock; }
};

class JournalIndex : public KvIndex {
 public:
  JournalIndex(std::unique_ptr<KvIndex> inner, int fd, uint64_t bytes, uint64_t next_seq, uint64_t gen,
               JournalHooks hooks)
      : inner_(std::move(inner)), hooks_(std::move(hooks)), fd_(fd), bytes_(bytes), layout_(bytes), max_record_((layout_.mid - kHeaderBlock) / 2),
        next_seq_(next_seq), gen_(gen), durable_seq_(next_seq - 1) {}
  ~JournalIndex() override {
    if (flush_.valid()) (void)flush_.get();
    ::close(fd_);
  }

  // The first half starts (at open), after the inner index is synced.
  Status start() {
    std::lock_guard lk(mu_);
    RETURN_IF_ERROR(inner_->sync());
    salt_ = random_salt();
    return restart_at(kHeaderBlock);
  }

  Result<std::optional<std::string>> get(std::string_view key) override { return inner_->get(key); }
  IndexStats stats() override { return inner_->stats(); }
  Status scan(std::string_view start, std::string_view end,
              const std::function<bool(std::string_view, std::string_view)>& fn) override {
    return inner_->scan(start, end, fn);
  }

  Status write(const KvBatch& batch, bool sync) override {
    std::shared_ptr<Pending> waiting;
    uint64_t seq = 0;
    {
      std::lock_guard lk(mu_);
      seq = next_seq_;
      if (broken_) return write_through(batch, sync);
      std::string payload = encode_payload(batch);
      uint64_t size = record_size(payload.size());
      if (size > max_record_) return write_large(batch);
      while (head_ + size > half_end_) {
        Status st = next_half();
        if (!st.ok()) {
          RETURN_IF_ERROR(break_journal(st));
          return write_through(batch, sync);
        }
      }
      // An unsynced write with no write before it waiting is applied at
      // once (a power loss may lose it anyway); the others after the ring's
      // fdatasync covers them, in order.
      bool now = !sync && pending_.empty();
      if (now) {
        std::lock_guard a(apply_mu_);
        RETURN_IF_ERROR(inner_->write(with_seq(batch, seq), false));
      }
      uint64_t off = head_;
      Status st = write_at(fd_, encode_record(salt_, seq, payload), off);
      if (!st.ok()) {
        if (now) {
          ++next_seq_;
          return break_journal(st);
        }
        RETURN_IF_ERROR(break_journal(st));
        return write_through(batch, sync);
      }
      ++next_seq_;
      head_ += size;
      written_pos_.store(pack_position(epoch_, head_), std::memory_order_release);
      written_seq_.store(seq, std::memory_order_release);
      if (now) return ok_status();
      waiting = std::make_shared<Pending>(Pending{seq, with_seq(batch, seq), off, payload.size(), ok_status()});
      pending_.push_back(waiting);
    }
    RETURN_IF_ERROR(wait_durable(seq));
    return waiting->status;
  }

  Status sync() override {
    uint64_t seq;
    {
      std::lock_guard lk(mu_);
      seq = next_seq_ - 1;
    }
    return wait_durable(seq);
  }

  uint64_t ring_synced_seq() const { return ring_synced_seq_.load(std::memory_order_acquire); }

  JournalPosition position() {
    std::lock_guard lk(mu_);
    std::lock_guard sl(sync_mu_);
    return {synced_pos_ & kOffsetMask, head_};
  }

 private:
  // Writes in the ring waiting for its fdatasync before they are applied.
  struct Pending {
    uint64_t seq;
    KvBatch batch;         // with its sequence number
    uint64_t off;          // of its record in the ring
    size_t payload_bytes;  // of its record
    Status status;         // of applying it
  };
  using PendingList = std::vector<std::shared_ptr<Pending>>;

  // mu_ held: a new half (epoch) begins at `head`, the ring synced up to it
  // (after a header write).
  void set_synced_head(uint64_t head) {
    ++epoch_;
    written_pos_.store(pack_position(epoch_, head), std::memory_order_release);
    std::lock_guard sl(sync_mu_);
    synced_pos_ = pack_position(epoch_, head);
  }

  // (epoch, offset) in one word, so that a group commit reads both at once.
  static uint64_t pack_position(uint64_t epoch, uint64_t off) { return (epoch << 40) | off; }
  static constexpr uint64_t kOffsetMask = (uint64_t{1} << 40) - 1;

  // mu_ held. The write goes to the inner index alone (the ring is broken).
  Status write_through(const KvBatch& batch, bool sync) {
    {
      std::lock_guard a(apply_mu_);
      RETURN_IF_ERROR(inner_->write(with_seq(batch, next_seq_), sync));
    }
    ++next_seq_;
    return ok_status();
  }

  // mu_ held. A write too large for the ring: applied after every write
  // before it, and made durable by the inner index itself; the chain starts
  // again after it.
  Status write_large(const KvBatch& batch) {
    Status st = settle();
    if (!st.ok()) {
      RETURN_IF_ERROR(break_journal(st));
      return write_through(batch, true);
    }
    {
      std::lock_guard a(apply_mu_);
      st = inner_->write(with_seq(batch, next_seq_), false);
    }
    if (!st.ok()) {
      all_durable();  // the writes before it are (settle), and it used no number
      return st;
    }
    ++next_seq_;
    st = inner_->sync();
    if (st.ok()) st = restart_at(head_);
    if (!st.ok()) return break_journal(st);
    return ok_status();
  }

  // mu_ held. Writes the header: the chain starts at (off, seq); fdatasync,
  // which makes every record written so far durable too (they are applied).
  Status write_header(uint64_t off, uint64_t seq) {
    ++gen_;
    RETURN_IF_ERROR(write_at(fd_, encode_header({gen_, bytes_, salt_, off, seq}), gen_ % 2 * kHeaderSlot));
    RETURN_IF_ERROR(settle());
    all_durable();
    return ok_status();
  }

  // mu_ held: fdatasyncs the ring, then applies every write waiting for it.
  Status settle() {
    RETURN_IF_ERROR(sync_ring());
    ring_synced(next_seq_ - 1);
    return apply_now(take_pending(next_seq_ - 1));
  }

  // fdatasync of the ring, outside the group commit. A failed fdatasync may
  // have dropped the pages it could not write, so no later one that succeeds
  // proves anything: after one fails, every one counts as failed.
  // They are serialised, so that an error the kernel reports to one call
  // only is seen by every later one.
  Status sync_ring() {
    std::lock_guard rl(ring_sync_mu_);
    if (sync_failed_) return io_error("index journal: an earlier sync failed");
    if (fdatasync_ring() != 0) {
      int err = errno;
      sync_failed_ = true;
      return errno_status("sync index journal", err);
    }
    return ok_status();
  }

  int fdatasync_ring() { return hooks_.fdatasync ? hooks_.fdatasync(fd_) : ::fdatasync(fd_); }

  void ring_synced(uint64_t seq) {
    uint64_t cur = ring_synced_seq_.load(std::memory_order_relaxed);
    while (seq > cur && !ring_synced_seq_.compare_exchange_weak(cur, seq, std::memory_order_release)) {
    }
  }

  // mu_ held: the waiting writes up to `upto` (durable in the ring), in order.
  PendingList take_pending(uint64_t upto) {
    PendingList out;
    while (!pending_.empty() && pending_.front()->seq <= upto) {
      out.push_back(std::move(pending_.front()));
      pending_.pop_front();
    }
    return out;
  }

  // mu_ held: applies them now, after any application under way (a group
  // commit applies outside mu_): when it returns, every write taken from
  // pending_ so far is applied, even if `list` is empty.
  Status apply_now(const PendingList& list) {
    std::lock_guard a(apply_mu_);
    return apply(list);
  }

  // apply_mu_ held (taken while mu_ was held when `list` was taken, so
  // writes are applied in their order). Each write gets its own outcome. A
  // write the inner index refuses is answered with its error, so a replay
  // must not apply it either: its record is made void in the ring. An error
  // here means that failed (the caller gives the ring up).
  Status apply(const PendingList& list) {
    Status voided = ok_status();
    for (auto& p : list) {
      p->status = inner_->write(p->batch, false);
      if (p->status.ok()) continue;
      Status v = void_record(*p);
      if (voided.ok()) voided = v;
    }
    return voided;
  }

  // apply_mu_ held. Rewrites the write's record (in the current half: a
  // change of half applies every waiting write first, under apply_mu_) as
  // one that changes nothing, of the same length, so the chain stays whole,
  // and fdatasyncs it.
  Status void_record(const Pending& p) {
    // 4 bytes: no operation. 9: one delete of the empty key, which no one
    // uses (and the void record would be the same).
    if (p.payload_bytes <= 9) return ok_status();
    // One delete of a key no one uses (all NUL bytes), of the length that fills the payload.
    std::string payload;
    put_u32(payload, 1);
    payload.push_back('D');
    size_t key_bytes = p.payload_bytes - 9;
    put_u32(payload, static_cast<uint32_t>(key_bytes));
    payload.append(key_bytes, '\0');
    RETURN_IF_ERROR(write_at(fd_, encode_record(salt_, p.seq, payload), p.off));
    RETURN_IF_ERROR(sync_ring());
    LOG_WARN("index journal: write {} refused by the index ({}); its record is made void", p.seq,
             p.status.to_string());
    return ok_status();
  }

  // mu_ held: every write so far is durable (in the ring or the inner index)
  // and applied.
  void all_durable() {
    std::lock_guard sl(sync_mu_);
    durable_seq_ = std::max(durable_seq_, next_seq_ - 1);
    wake_all();
  }

  // mu_ held. The half where `off` is becomes the current one, from `off` on.
  void enter_half(uint64_t off) {
    head_ = off;
    half_start_ = off;
    half_start_seq_ = next_seq_;
    half_end_ = layout_.half_end(off);
    set_synced_head(off);
  }

  // mu_ held, every write so far durable in the inner index: the chain
  // starts again at `off` (at the start if `off` is the ring's end).
  Status restart_at(uint64_t off) {
    if (off >= layout_.end) off = kHeaderBlock;
    RETURN_IF_ERROR(write_header(off, next_seq_));
    enter_half(off);
    return ok_status();
  }

  // mu_ held. From the current half to the other one, which the flush
  // started on entering the current half made free: its records are
  // durable in the inner index. The header then points at the current
  // half's first record, and a flush of everything so far starts in the
  // background (for the next change of half).
  Status next_half() {
    if (flush_.valid()) RETURN_IF_ERROR(flush_.get());
    RETURN_IF_ERROR(write_header(half_start_, half_start_seq_));
    enter_half(layout_.other_half(half_start_));
    // The flush below must store the highest number so far, which the next
    // header's start follows, even if the last writes were refused (their
    // records made void): else the index would look as if it had lost them.
    RETURN_IF_ERROR(note_seq());
    try {
      flush_ = std::async(std::launch::async, [this] { return inner_->sync(); });
    } catch (const std::system_error& e) {
      LOG_WARN("index journal: no thread for a background flush ({}), flushing now", e.what());
      RETURN_IF_ERROR(inner_->sync());
    }
    return ok_status();
  }

  // mu_ held: the inner index stores the highest number used so far.
  Status note_seq() {
    KvBatch note;
    note.put(kJournalSeqKey, std::to_string(next_seq_ - 1));
    std::lock_guard a(apply_mu_);
    return inner_->write(note, false);
  }

  // mu_ held. The ring failed: from now on writes go to the inner index
  // alone (synced when asked). The writes so far are made durable there,
  // with the highest number used: no record of the ring is replayed after
  // that (refused writes among them included, whose records may not have
  // been made void).
  Status break_journal(const Status& why) {
    if (broken_) return inner_->sync();  // given up already (by another failure)
    log_given_up(why);
    broken_ = true;
    (void)apply_now(take_pending(next_seq_ - 1));
    (void)note_seq();
    if (!inner_->sync().ok()) {
      std::lock_guard sl(sync_mu_);
      wake_all();  // waiters see broken_
      return why;
    }
    all_durable();
    return ok_status();
  }

  // sync_mu_ held.
  void wake_all() {
    sync_cv_.notify_all();
    applied_cv_.notify_all();
  }

  // Group commit: one waiter fdatasyncs the ring for every record written so
  // far and applies the writes waiting for it; the others wait for it. The
  // next fdatasync may start while those writes are being applied.
  Status wait_durable(uint64_t seq) {
    std::unique_lock l(sync_mu_);
    for (;;) {
      if (durable_seq_ >= seq) return ok_status();
      if (broken_) {
        l.unlock();
        { std::lock_guard lk(mu_); }  // giving the ring up applied every waiting write
        return inner_->sync();
      }
      // The ring is being given up (which applies every waiting write), or
      // the write is covered by an fdatasync done or under way: wait until
      // applied.
      if (sync_failed_ || ring_synced_seq() >= seq || (syncing_ && syncing_seq_ >= seq)) {
        applied_cv_.wait(l);
        continue;
      }
      if (syncing_) {
        sync_cv_.wait(l);
        continue;
      }
      syncing_ = true;
      uint64_t target = written_seq_.load(std::memory_order_acquire);
      syncing_seq_ = target;
      uint64_t target_pos = written_pos_.load(std::memory_order_acquire);
      l.unlock();
      Status applied = sync_ring();
      l.lock();
      syncing_ = false;
      if (applied.ok()) {
        ring_synced(target);
        // Within the same half only (a change of half syncs on its own).
        if (target_pos >> 40 == synced_pos_ >> 40 && target_pos > synced_pos_) synced_pos_ = target_pos;
      }
      sync_cv_.notify_all();  // the writes it did not cover: one of them leads next
      l.unlock();
      if (applied.ok()) {
        // Applied outside mu_, so that writers go on filling the ring.
        std::unique_lock lk(mu_);
        PendingList list = take_pending(target);
        std::lock_guard a(apply_mu_);
        lk.unlock();
        applied = apply(list);
      }
      if (!applied.ok()) {
        std::lock_guard lk(mu_);
        (void)break_journal(applied);
      }
      l.lock();
      if (applied.ok()) durable_seq_ = std::max(durable_seq_, target);
      applied_cv_.notify_all();
    }
  }

  std::unique_ptr<KvIndex> inner_;
  const JournalHooks hooks_;
  const int fd_;
  const uint64_t bytes_;
  const Layout layout_;
  const uint64_t max_record_;

  std::mutex mu_;  // order: mu_, then apply_mu_, then sync_mu_
  uint64_t next_seq_;
  uint64_t salt_ = 0;
  uint64_t head_ = kHeaderBlock;
  uint64_t gen_;  // of the last header written
  uint64_t half_start_ = kHeaderBlock, half_start_seq_ = 0, half_end_ = kHeaderBlock;
  std::future<Status> flush_;  // the inner index's sync since entering this half
  uint64_t epoch_ = 0;  // halves entered
  std::atomic<uint64_t> written_seq_{0};  // the last record written to the ring
  std::atomic<uint64_t> written_pos_{0};  // pack_position(epoch_, head_) after it
  std::atomic<bool> broken_{false};

  std::deque<std::shared_ptr<Pending>> pending_;  // in the ring, waiting for its fdatasync
  std::mutex apply_mu_;  // order: mu_, then apply_mu_, then sync_mu_; held while writes are applied
  std::atomic<uint64_t> ring_synced_seq_{0};  // records up to it are fdatasynced
  std::mutex ring_sync_mu_;                    // innermost: held across each fdatasync of the ring
  std::atomic<bool> sync_failed_{false};       // one failed (then the ring is given up)

  std::mutex sync_mu_;
  std::condition_variable sync_cv_;     // waiting for an fdatasync of the ring
  std::condition_variable applied_cv_;  // covered by one, waiting to be applied
  uint64_t durable_seq_;
  uint64_t synced_pos_ = 0;  // for tests: where unsynced records begin
  bool syncing_ = false;

  uint64_t syncing_seq_ = 0;  // the fdatasync under way covers writes up to it
};

Result<uint64_t> applied_seq(KvIndex& inner) {
  ASSIGN_OR_RETURN(auto v, inner.get(kJournalSeqKey));
  uint64_t seq = 0;
  if (v && std::from_chars(v->data(), v->data() + v->size(), seq).ec != std::errc())
    return internal_error("index journal: bad sequence number in the index");
  return seq;
}

// Applies the ring's records after `applied` to `inner`, following the chain
// from the header's start (on to the other half where one half's records
// end). Returns the last sequence number the chain holds (or start_seq - 1).
Result<uint64_t> replay(int fd, const Header& h, KvIndex& inner, uint64_t applied, uint64_t& replayed) {
  Layout layout(h.bytes);
  uint64_t off = h.start, expect = h.start_seq;
  bool jumped = false;
  std::string buf;
  auto record_at = [&](uint64_t at) -> std::optional<KvBatch> {
    char head[kRecordHead];
    if (at + kRecordHead > layout.half_end(at) || !pread_fully(fd, head, kRecordHead, at)) return std::nullopt;
    uint32_t len = get_u32(head);
    if (get_u64(head + 8) != expect || len > layout.half_end(at) - at - kRecordHead) return std::nullopt;
    buf.resize(len);
    if (!pread_fully(fd, buf.data(), len, at + kRecordHead)) return std::nullopt;
    if (record_crc(h.salt, expect, buf) != get_u32(head + 4)) return std::nullopt;
    return decode_payload(buf);
  };
  if (off < kHeaderBlock || off >= layout.end) return expect - 1;
  for (;;) {
    auto batch = record_at(off);
    if (!batch) {
      if (jumped) break;
      off = layout.other_half(off);
      jumped = true;
      continue;
    }
    if (expect > applied) {
      RETURN_IF_ERROR(inner.write(with_seq(std::move(*batch), expect), false));
      ++replayed;
    }
    ++expect;
    off += record_size(buf.size());
    jumped = false;
  }
  return expect - 1;
}

Status zero_fill(int fd, uint64_t bytes) {
  if (::ftruncate(fd, 0) != 0) return errno_status("truncate index journal", errno);
  std::string zeros(1 << 20, '\0');
  for (uint64_t off = 0; off < bytes; off += zeros.size()) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(zeros.size(), bytes - off));
    RETURN_IF_ERROR(write_fully(fd, zeros.data(), n, "index journal"));
  }
  if (::fdatasync(fd) != 0) return errno_status("sync index journal", errno);
  return ok_status();
}

}  // namespace

Result<std::unique_ptr<KvIndex>> open_journaled_index(std::unique_ptr<KvIndex> inner, const std::string& path,
                                                      uint64_t bytes, JournalOpenInfo* info, JournalHooks hooks) {
  bytes = bytes / kPage * kPage;
  if (bytes < kMinJournalBytes) return invalid_argument("index journal: at least 1 MiB");
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return errno_status("open index journal " + path, errno);
  auto fail = [&](Status st) -> Result<std::unique_ptr<KvIndex>> {
    ::close(fd);
    return st;
  };
  struct stat sb {};
  if (::fstat(fd, &sb) != 0) return fail(errno_status("stat index journal", errno));
  uint64_t file_bytes = static_cast<uint64_t>(sb.st_size);
  auto applied = applied_seq(*inner);
  if (!applied.ok()) return fail(applied.status());
  uint64_t last = applied.value();

  std::string hb(kHeaderBlock, '\0');
  std::optional<Header> h;
  uint64_t gen = 0;
  bool read = file_bytes >= kHeaderBlock && pread_fully(fd, hb.data(), hb.size(), 0);
  if (read) h = decode_header(hb);
  if (h) gen = h->gen;  // the next header goes to the other slot
  if (h && h->bytes == file_bytes) {
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
    // The index lost writes it had made durable (restored or removed): the
    // ring's records would land on a state they do not follow.
    if (h->start_seq > applied.value() + 1)
      return fail(failed_precondition(fmt::format(
          "index journal {} starts at write {} but the index holds writes up to {} only: the index lost "
          "writes it had made durable (restored from a copy, or removed?). Move the journal away to start "
          "on the index as it is.",
          path, h->start_seq, applied.value())));
    uint64_t replayed = 0;
    auto end = replay(fd, *h, *inner, applied.value(), replayed);
    if (!end.ok()) return fail(end.status());
    last = std::max(last, end.value());
    if (replayed > 0) {  // durable before a resize below truncates the ring
      Status st = inner->sync();
      if (!st.ok()) return fail(st);
      LOG_INFO("index journal: {} writes applied again to the index (up to write {})", replayed, last);
    }
    if (info) {
      info->replayed = replayed;
      info->header_gen = h->gen;
    }
  } else if (read && headers_damaged(hb)) {
    return fail(failed_precondition(fmt::format(
        "index journal {}: both of its headers are damaged, so the writes it holds cannot be found and the "
        "index may lack acknowledged writes. Move the journal away to start on the index as it is.",
        path)));
  } else if (file_bytes != 0) {
    LOG_WARN("index journal {}: no valid header, nothing to apply", path);
  }
  if (file_bytes != bytes) {
    Status st = zero_fill(fd, bytes);
    if (!st.ok()) return fail(st);
    fsync_dir(std::filesystem::path(path).parent_path().string());
  }
  auto j = std::make_unique<JournalIndex>(std::move(inner), fd, bytes, last + 1, gen, std::move(hooks));
  RETURN_IF_ERROR(j->start());
  return std::unique_ptr<KvIndex>(std::move(j));
}

JournalPosition journal_position(KvIndex& journaled) {
  auto* j = dynamic_cast<JournalIndex*>(&journaled);
  return j ? j->position() : JournalPosition{};
}

uint64_t journal_synced_seq(KvIndex& journaled) {
  auto* j = dynamic_cast<JournalIndex*>(&journaled);
  return j ? j->ring_synced_seq() : 0;
}

}  // namespace reservoir::store
