#include "persist/persister.h"

#include <algorithm>
#include <deque>
#include <random>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "common/guarded.h"
#include "common/log.h"
#include "common/workers.h"

namespace reservoir::persist {

using Clock = std::chrono::steady_clock;

namespace {

std::string join_key(const std::string& b, const std::string& k) { return b + std::string(1, '\0') + k; }
std::pair<std::string, std::string> split_key(const std::string& full) {
  auto z = full.find('\0');
  return {full.substr(0, z), full.substr(z + 1)};
}

// Streams one pinned cache version to the under store.
class HandleSource : public ufs::Source {
 public:
  explicit HandleSource(store::ReadHandle h) : h_(std::move(h)) {}
  Result<size_t> read(char* buf, size_t n) override {
    auto r = h_.pread(off_, buf, n);
    if (r.ok()) off_ += *r;
    return r;
  }

 private:
  store::ReadHandle h_;
  uint64_t off_ = 0;
};

std::chrono::milliseconds backoff(int attempt) {
  static thread_local std::mt19937 rng(std::random_device{}());
  // Capped at 10 s so that a backend back from an outage is used again soon.
  int64_t base = std::min<int64_t>(10'000, 200LL << std::min(attempt, 10));
  std::uniform_int_distribution<int64_t> d(base / 2, base);
  return std::chrono::milliseconds(d(rng));
}

}  // namespace

struct Persister::Queue {
  explicit Queue(ns::Mount* m)
      : mount(m), ops(m->config.persist.max_ops_per_sec),
        bytes(static_cast<double>(m->config.persist.max_bytes_per_sec),
              std::max(1.0, static_cast<double>(m->config.persist.max_bytes_per_sec) * 0.1)) {}
  // (bytes may burst a tenth of a second's worth: objects are large and uneven)
  ns::Mount* mount;
  RateLimiter ops;
  RateLimiter bytes;
  std::mutex mu;
  std::condition_variable cv;
  // Ready time -> key; `pending` maps each queued key to its slot and attempt.
  std::multimap<Clock::time_point, std::string> ready;
  struct Slot {
    std::multimap<Clock::time_point, std::string>::iterator it;
    int attempt;
    Clock::time_point first_queued;
  };
  // (Hashed: keys under one prefix share long heads, which a tree compares
  // at every level, on every PUT.)
  std::unordered_map<std::string, Slot> pending;
  std::unordered_set<std::string> in_flight;
  std::unordered_set<std::string> again;  // re-dirtied while in flight
  uint64_t persisted = 0, retries = 0, parked = 0, throttled = 0;
  // AIMD: uploads may start while active < limit; SlowDown halves the limit,
  // each success adds 1/limit, up to the configured concurrency.
  double limit = 1;
  int active = 0;
  LatencyHistogram latency;
  std::deque<Clock::time_point> recent;  // completion times, last 10 s
  std::vector<std::thread> threads;
};

void LatencyHistogram::add(double seconds) {
  size_t i = 0;
  while (i < kBuckets && seconds > kBounds[i]) ++i;
  counts[i]++;
  sum += seconds;
  total++;
}

Persister::Persister(store::CacheStore& store, ns::Namespace& ns) : store_(store), ns_(ns) {
  for (auto& m : ns_.mounts()) {
    queues_.push_back(std::make_unique<Queue>(m.get()));
    queues_.back()->limit = m->config.persist.concurrency;
  }
}

Persister::~Persister() { stop(); }

Persister::Queue* Persister::queue_for(const std::string& bucket) {
  auto r = ns_.resolve_bucket(bucket);
  if (!r.ok()) return nullptr;
  return queues_[static_cast<size_t>(r->mount->id)].get();
}

Status Persister::start() {
  uint64_t n = 0;
  std::vector<std::pair<std::string, std::string>> unserved;  // no mount serves their bucket now
  Status st = store_.scan_dirty([&](const std::string& b, const std::string& k) {
    if (queue_for(b)) enqueue(b, k);
    else unserved.emplace_back(b, k);
    ++n;
    return true;
  });
  RETURN_IF_ERROR(st);
  if (n) LOG_INFO("persister: {} dirty objects to persist from before the restart", n);
  // Parked with the reason (listed by persist-status, kept, and queued again
  // by retry-parked once a mount serves them), rather than left dirty and
  // never queued, which a sync barrier would wait for forever.
  for (const auto& [b, k] : unserved) {
    auto m = store_.get(b, k);
    if (!m.ok()) return m.status();
    if (!m.value()) continue;
    std::string why = fmt::format("no mount serves bucket '{}' in this configuration", b);
    auto parked = store_.set_state_if_current(b, k, m.value()->version, store::PersistState::parked, why);
    if (!parked.ok()) return parked.status();
    LOG_WARN("persister: parked {}/{}: {}", b, k, why);
  }
  for (auto& q : queues_) {
    start_workers(q->threads, q->mount->config.persist.concurrency, [this, qp = q.get()] { worker(qp); },
                  "persister");
    if (q->threads.empty()) return resource_exhausted("persister: no thread could be started");
  }
  return ok_status();
}

void Persister::stop() {
  for (auto& q : queues_) {
    std::lock_guard lk(q->mu);
    stopping_ = true;
    q->cv.notify_all();
  }
  for (auto& q : queues_)
    for (auto& t : q->threads)
      if (t.joinable()) t.join();
}

void Persister::schedule(Queue* q, const std::string& full, Clock::time_point when, int attempt) {
  // Caller holds q->mu.
  // Workers sleep until the earliest entry is due: only a new earliest
  // entry needs to wake one (a PUT per wake-up costs two context switches).
  auto p = q->pending.find(full);
  if (p != q->pending.end()) {
    if (p->second.it->first <= when) return;
    q->ready.erase(p->second.it);
    p->second.it = q->ready.emplace(when, full);
    if (p->second.it == q->ready.begin()) q->cv.notify_one();
    return;
  }
  auto it = q->ready.emplace(when, full);
  q->pending[full] = {it, attempt, Clock::now()};
  if (it == q->ready.begin()) q->cv.notify_one();
}

void Persister::enqueue(const std::string& bucket, const std::string& key) {
  Queue* q = queue_for(bucket);
  if (!q) return;
  std::string full = join_key(bucket, key);
  std::lock_guard lk(q->mu);
  if (q->in_flight.count(full)) {
    q->again.insert(full);
    return;
  }
  schedule(q, full, Clock::now() + q->mount->config.persist.delay, 0);
}

void Persister::worker(Queue* q) {
  std::unique_lock lk(q->mu);
  while (!stopping_) {
    if (q->ready.empty()) {
      q->cv.wait(lk);
      continue;
    }
    if (q->active >= std::max(1, static_cast<int>(q->limit))) {
      q->cv.wait(lk);
      continue;
    }
    auto first = q->ready.begin();
    auto now = Clock::now();
    if (first->first > now) {
      q->cv.wait_until(lk, first->first);
      continue;
    }
    std::string full = first->second;
    q->ready.erase(first);
    int attempt = q->pending[full].attempt;
    q->pending.erase(full);
    q->in_flight.insert(full);
    q->active++;
    // More work and room for it: wake the next worker (each one wakes the
    // next, so a burst fans out to the whole pool).
    if (!q->ready.empty() && q->active < std::max(1, static_cast<int>(q->limit))) q->cv.notify_one();
    lk.unlock();
    auto [bucket, key] = split_key(full);
    Next next;
    // An exception (not an error value) is retried like an unavailable backend.
    bool threw = !guarded("persister", [&, &b = bucket, &k = key] { next = process(q, b, k, attempt); });
    if (threw) next = {true, backoff(attempt), attempt + 1};
    lk.lock();
    if (threw) q->retries++;
    q->active--;
    q->in_flight.erase(full);
    double max = q->mount->config.persist.concurrency;
    if (next.throttled) {
      q->throttled++;
      q->limit = std::max(1.0, q->limit / 2);
    } else if (next.uploaded) {
      q->limit = std::min(max, q->limit + 1.0 / std::max(1.0, q->limit));
      auto now2 = Clock::now();
      q->recent.push_back(now2);
      while (!q->recent.empty() && now2 - q->recent.front() > std::chrono::seconds(10)) q->recent.pop_front();
    }
    // This worker takes the next entry itself; one more may start if the
    // limit grew.
    q->cv.notify_one();
    if (q->again.erase(full)) schedule(q, full, Clock::now() + q->mount->config.persist.delay, 0);
    else if (next.again) schedule(q, full, Clock::now() + next.delay, next.attempt);
  }
}

Status Persister::upload(Queue* q, ns::Resolved& where, const std::string& bucket, const std::string& key,
                         store::ObjectMeta& meta) {
  auto stopped = [] { return Status(Code::unavailable, "the server is stopping"); };
  if (!q->ops.acquire(1, &stopping_)) return stopped();
  if (meta.deleted) {
    Status st = where.mount->store->remove(where.ufs_path);
    where.mount->changed();
    return st;
  }
  if (!q->bytes.acquire(static_cast<double>(meta.size), &stopping_)) return stopped();
  auto h = store_.open(bucket, key);
  if (!h.ok()) return h.status();
  if (h->meta().version != meta.version) return aborted("superseded");
  ufs::ObjectInfo info;
  info.size = meta.size;
  info.etag = meta.etag;
  info.content_type = meta.content_type;
  info.headers = meta.headers;
  info.user_meta = meta.user_meta;
  info.tags = meta.tags;
  info.mtime_ms = meta.mtime_ms;
  HandleSource src(std::move(h.value()));
  Status st = where.mount->store->put(where.ufs_path, src, meta.size, info);
  where.mount->changed();
  return st;
}

Persister::Next Persister::process(Queue* q, const std::string& bucket, const std::string& key, int attempt) {
  auto cur = store_.get(bucket, key);
  if (!cur.ok()) {
    LOG_WARN("persister: cannot read index for {}/{}: {}", bucket, key, cur.status().to_string());
    return {true, backoff(attempt), attempt + 1};
  }
  if (!cur.value() || !store::is_dirty_state(*cur.value())) return {};
  store::ObjectMeta meta = *cur.value();
  auto where = ns_.resolve(bucket, key);
  Status st = where.ok() ? ok_status() : where.status();
  if (st.ok()) {
    auto marked = store_.set_state_if_current(bucket, key, meta.version, store::PersistState::persisting);
    if (!marked.ok()) return {true, backoff(attempt), attempt + 1};
    if (!marked.value()) return {true, std::chrono::milliseconds(0), 0};  // superseded: take the newer version
    auto t0 = Clock::now();
    try {
      st = upload(q, where.value(), bucket, key, meta);
    } catch (const std::exception& e) {  // parked below, instead of ending the process
      st = failed_precondition(std::string("upload failed: ") + e.what());
    }
    double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    std::lock_guard lk(q->mu);
    q->latency.add(secs);
  }
  if (st.ok()) {
    auto done = store_.set_state_if_current(bucket, key, meta.version, store::PersistState::persisted);
    std::lock_guard lk(q->mu);
    q->persisted++;
    // A newer version arrived during the upload: it goes next.
    if (done.ok() && !done.value()) return {true, std::chrono::milliseconds(0), 0, false, true};
    return {false, std::chrono::milliseconds(0), 0, false, true};
  }
  if (st.code() == Code::aborted) return {true, std::chrono::milliseconds(0), 0};
  if (st.retryable() || st.code() == Code::io_error || st.code() == Code::internal) {
    LOG_DEBUG("persister: retry {}/{} (attempt {}): {}", bucket, key, attempt + 1, st.to_string());
    (void)store_.set_state_if_current(bucket, key, meta.version, store::PersistState::dirty);
    std::lock_guard lk(q->mu);
    q->retries++;
    bool throttled = st.s3_code() && std::string(st.s3_code()) == "SlowDown";
    return {true, backoff(attempt), attempt + 1, throttled, false};
  }
  LOG_WARN("persister: parked {}/{}: {}", bucket, key, st.to_string());
  (void)store_.set_state_if_current(bucket, key, meta.version, store::PersistState::parked, st.to_string());
  std::lock_guard lk(q->mu);
  q->parked++;
  return {};
}

SyncResult Persister::sync(const std::string& bucket, const std::string& prefix, std::chrono::milliseconds timeout) {
  struct Want {
    std::string bucket, key;
    uint64_t version;
  };
  std::vector<Want> wants;
  Status failed;  // a key that cannot be read: the answer cannot be "done"
  auto collect = [&](const std::string& b, const std::string& k) {
    if ((bucket.empty() || b == bucket) && k.compare(0, prefix.size(), prefix) == 0) {
      auto m = store_.get(b, k);
      if (!m.ok()) failed = m.status();
      else if (m.value()) wants.push_back({b, k, m.value()->version});
    }
    return failed.ok();
  };
  Status st = store_.scan_dirty(collect);
  // Objects parked before the call are part of the answer too.
  if (st.ok() && failed.ok()) st = store_.scan_parked(collect);
  if (st.ok()) st = failed;
  if (!st.ok()) {
    LOG_WARN("sync barrier: cannot list what is dirty: {}", st.to_string());
    return {};
  }
  // Release held-back writes now.
  for (auto& w : wants) {
    Queue* q = queue_for(w.bucket);
    if (!q) continue;
    std::lock_guard lk(q->mu);
    std::string full = join_key(w.bucket, w.key);
    auto p = q->pending.find(full);
    if (p != q->pending.end() && p->second.attempt == 0) schedule(q, full, Clock::now(), 0);
  }
  auto deadline = Clock::now() + timeout;
  SyncResult res;
  for (;;) {
    res.pending = 0;
    std::vector<Want> still;
    for (auto& w : wants) {
      auto m = store_.get(w.bucket, w.key);
      if (!m.ok()) {
        still.push_back(w);
        continue;
      }
      const auto& mm = m.value();
      if (!mm || mm->version != w.version) continue;  // persisted tombstone, or superseded
      if (mm->state == store::PersistState::parked) {
        res.parked.emplace_back(w.bucket + "/" + w.key, mm->park_reason);
        continue;
      }
      if (store::is_dirty_state(*mm)) still.push_back(w);
    }
    wants.swap(still);
    res.pending = wants.size();
    res.done = wants.empty() && res.parked.empty();
    if (wants.empty()) {
      // The barrier's answer holds after a power loss too: the persisted
      // marks (not synced on their own) are made durable before it is given.
      Status st = store_.sync_index();
      if (!st.ok()) {
        LOG_WARN("sync barrier: cannot make the index durable: {}", st.to_string());
        res.done = false;
      }
      return res;
    }
    if (Clock::now() >= deadline || closing_) return res;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

Result<uint64_t> Persister::retry_parked(const std::string& bucket, const std::string& prefix,
                                         const AroundKey& around) {
  std::vector<std::pair<std::string, std::string>> keys;
  Status st = store_.scan_parked([&](const std::string& b, const std::string& k) {
    if ((bucket.empty() || b == bucket) && k.compare(0, prefix.size(), prefix) == 0) keys.emplace_back(b, k);
    return true;
  });
  RETURN_IF_ERROR(st);
  uint64_t n = 0;
  for (auto& [b, k] : keys) {
    if (!queue_for(b)) continue;  // no mount serves it: it stays parked (a barrier would wait for it forever)
    auto one = [&, &b = b, &k = k] {
      auto m = store_.get(b, k);
      if (!m.ok() || !m.value() || m.value()->state != store::PersistState::parked) return;
      auto r = store_.set_state_if_current(b, k, m.value()->version, store::PersistState::dirty);
      if (r.ok() && r.value()) {
        enqueue(b, k);
        ++n;
      }
    };
    if (around) around(b, k, one);
    else one();
  }
  return n;
}

std::vector<MountStats> Persister::stats() {
  std::vector<MountStats> out;
  auto now = Clock::now();
  for (auto& q : queues_) {
    std::lock_guard lk(q->mu);
    MountStats s;
    s.mount = q->mount->config.path;
    s.queued = q->pending.size();
    s.in_flight = q->in_flight.size();
    s.persisted = q->persisted;
    s.retries = q->retries;
    s.parked = q->parked;
    s.throttled = q->throttled;
    s.concurrency = q->limit;
    s.max_concurrency = q->mount->config.persist.concurrency;
    s.latency = q->latency;
    size_t recent = 0;
    for (auto& t : q->recent)
      if (now - t <= std::chrono::seconds(10)) ++recent;
    s.recent_rate = static_cast<double>(recent) / 10.0;
    for (auto& [k, slot] : q->pending)
      s.oldest_dirty_ms = std::max<int64_t>(
          s.oldest_dirty_ms, std::chrono::duration_cast<std::chrono::milliseconds>(now - slot.first_queued).count());
    out.push_back(s);
  }
  return out;
}

PrefixSummary Persister::summarize(const std::string& bucket, const std::string& prefix) {
  PrefixSummary out;
  int64_t now = store::now_ms();
  auto match = [&](const std::string& b, const std::string& k) {
    return (bucket.empty() || b == bucket) && k.compare(0, prefix.size(), prefix) == 0;
  };
  (void)store_.scan_dirty([&](const std::string& b, const std::string& k) {
    if (!match(b, k)) return true;
    auto m = store_.get(b, k);
    if (!m.ok() || !m.value()) return true;
    if (m.value()->deleted) out.tombstones++;
    else {
      out.dirty_objects++;
      out.dirty_bytes += m.value()->size;
    }
    out.oldest_dirty_age_ms = std::max(out.oldest_dirty_age_ms, now - m.value()->mtime_ms);
    return true;
  });
  (void)store_.scan_parked([&](const std::string& b, const std::string& k) {
    if (!match(b, k)) return true;
    auto m = store_.get(b, k);
    if (m.ok() && m.value() && m.value()->state == store::PersistState::parked)
      out.parked.emplace_back(b + "/" + k, m.value()->park_reason);
    return true;
  });
  return out;
}

}  // namespace reservoir::persist
