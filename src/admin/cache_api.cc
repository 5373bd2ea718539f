#include "admin/cache_api.h"

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/json_text.h"

namespace reservoir::admin {

using nlohmann::json;

std::pair<std::string, std::string> split_prefix(std::string p) {
  while (!p.empty() && p.front() == '/') p.erase(0, 1);
  auto slash = p.find('/');
  if (slash == std::string::npos) return {p, ""};
  return {p.substr(0, slash), p.substr(slash + 1)};
}

namespace {

Reply error(int status, const std::string& msg) { return {status, json_text(json{{"error", msg}}) + "\n"}; }

int status_of(const Status& st) {
  switch (st.code()) {
    case Code::not_found: return 404;
    case Code::invalid_argument: return 400;
    case Code::failed_precondition: return 409;
    default: return 500;
  }
}

}  // namespace

CacheAdmin::~CacheAdmin() {
  std::lock_guard lk(mu_);
  for (auto& [id, j] : jobs_) j->progress.cancel = true;  // stopping: loads end after their objects under way
  for (auto& [id, j] : jobs_)
    if (j->thread.joinable()) j->thread.join();
}

Reply CacheAdmin::start_load(const std::string& prefix, int concurrency) {
  auto [bucket, pre] = split_prefix(prefix);
  if (bucket.empty()) return error(400, "load needs a bucket: PREFIX is bucket/prefix");
  auto job = std::make_unique<Job>();
  job->prefix = prefix;
  Job* jp = job.get();
  uint64_t id;
  {
    std::lock_guard lk(mu_);
    id = next_id_++;
    jobs_[id] = std::move(job);
  }
  // Each loader is a thread: a bounded number, whatever the query asks.
  constexpr int kMaxLoadConcurrency = 64;
  int n = std::min(concurrency > 0 ? concurrency : config_.cache.load_concurrency, kMaxLoadConcurrency);
  jp->thread = std::thread([this, jp, bucket = bucket, pre = pre, n] {
    try {
      jp->status = engine_.load(bucket, pre, n, jp->progress);
    } catch (const std::exception& e) {  // a failed job, not the end of the process
      jp->status = internal_error(std::string("load failed: ") + e.what());
    }
    jp->progress.finished = true;
  });
  return {200, json_text(json{{"id", id}}) + "\n"};
}

Reply CacheAdmin::job(const std::string& id) {
  std::lock_guard lk(mu_);
  uint64_t n = 0;
  try {
    n = std::stoull(id);
  } catch (...) {
    return error(400, "bad job id");
  }
  auto it = jobs_.find(n);
  if (it == jobs_.end()) return error(404, "no such job");
  Job& j = *it->second;
  auto& p = j.progress;
  bool finished = p.finished.load();
  json out{{"id", n},
           {"prefix", j.prefix},
           {"listed", p.listed.load()},
           {"finished", finished},
           {"objects_total", p.objects_total.load()},
           {"objects_done", p.objects_done.load()},
           {"bytes_total", p.bytes_total.load()},
           {"bytes_done", p.bytes_done.load()},
           {"errors", p.errors.load()}};
  {
    std::lock_guard plk(p.mu);
    if (!p.first_error.empty()) out["first_error"] = p.first_error;
  }
  if (finished && !j.status.ok()) out["error"] = j.status.to_string();
  return {200, json_text(out) + "\n"};
}

Reply CacheAdmin::free(const std::string& prefix) {
  auto [bucket, pre] = split_prefix(prefix);
  if (bucket.empty()) return error(400, "free needs a bucket: PREFIX is bucket/prefix");
  auto r = engine_.free(bucket, pre);
  if (!r.ok()) return error(status_of(r.status()), r.status().to_string());
  json out{{"freed_objects", r->objects},
           {"freed_bytes", r->bytes},
           {"refused_dirty", r->refused_dirty},
           {"refused_pinned", r->refused_pinned},
           {"refused", r->refused_keys}};
  return {200, json_text(out) + "\n"};
}

Reply CacheAdmin::set_rule(const std::string& prefix, std::optional<bool> pin, std::optional<int64_t> ttl_ms,
                           const std::string& action) {
  auto [bucket, pre] = split_prefix(prefix);
  if (bucket.empty()) return error(400, "PREFIX must name a bucket: bucket/prefix");
  PolicyConfig p;
  p.path = "/" + bucket + "/" + pre;
  p.pin = pin;
  if (ttl_ms) {
    // (An object's mtime plus the TTL must not overflow: it would count as expired.)
    constexpr int64_t kMaxTtlMs = int64_t{100} * 365 * 86400 * 1000;
    if (*ttl_ms < 0 || *ttl_ms > kMaxTtlMs) return error(400, "the TTL must be between 0 and 100 years");
    p.ttl = std::chrono::milliseconds(*ttl_ms);
  }
  if (!action.empty()) {
    auto a = parse_ttl_action(action);
    if (!a.ok()) return error(400, a.status().message());
    p.ttl_action = *a;
  }
  Status st = engine_.set_rule(p);
  if (!st.ok()) return error(status_of(st), st.to_string());
  return rules();
}

Reply CacheAdmin::rules() {
  json out = json::array();
  for (auto& r : engine_.names().runtime_rules()) {
    json j{{"path", r.path}};
    if (r.pin) j["pin"] = *r.pin;
    if (r.ttl) j["ttl_ms"] = r.ttl->count();
    if (r.ttl_action) j["ttl_action"] = ttl_action_name(*r.ttl_action);
    out.push_back(j);
  }
  return {200, json_text(json{{"rules", out}}) + "\n"};
}

Reply CacheAdmin::stat(const std::string& path) {
  auto [bucket, key] = split_prefix(path);
  if (bucket.empty() || key.empty()) return error(400, "stat needs bucket/key");
  auto r = engine_.stat(bucket, key);
  if (!r.ok()) return error(status_of(r.status()), r.status().to_string());
  return {200, *r};
}

std::string CacheAdmin::metrics() {
  std::string out;
  auto head = [&](const char* name, const char* type, const char* help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  auto rs = engine_.reads().stats();
  head("reservoir_cache_hits_total", "counter", "Reads served from the cache, by unit (object or page).");
  out += fmt::format("reservoir_cache_hits_total{{unit=\"object\"}} {}\n", rs.object_hits);
  out += fmt::format("reservoir_cache_hits_total{{unit=\"page\"}} {}\n", rs.page_hits);
  head("reservoir_cache_misses_total", "counter", "Pages fetched from the under store for readers.");
  out += fmt::format("reservoir_cache_misses_total {}\n", rs.page_misses);
  head("reservoir_cache_backend_read_bytes_total", "counter", "Bytes read from under stores by the read cache.");
  out += fmt::format("reservoir_cache_backend_read_bytes_total {}\n", rs.backend_bytes);
  head("reservoir_cache_uncached_read_bytes_total", "counter", "Bytes read through without being kept (no room, no-cache).");
  out += fmt::format("reservoir_cache_uncached_read_bytes_total {}\n", rs.uncached_bytes);
  head("reservoir_cache_promotions_total", "counter", "Units moved up to the fastest tier by promote reads.");
  out += fmt::format("reservoir_cache_promotions_total {}\n", rs.promotions);
  head("reservoir_cache_stale_drops_total", "counter", "Cached copies dropped because the under store changed.");
  out += fmt::format("reservoir_cache_stale_drops_total {}\n", engine_.stale_drops());
  head("reservoir_cache_list_hits_total", "counter", "Under-store listing pages answered from the list cache.");
  out += fmt::format("reservoir_cache_list_hits_total {}\n", engine_.list_cache_hits());
  auto usage = engine_.store().space().usage();
  head("reservoir_tier_capacity_bytes", "gauge", "Quota of each tier (0 = unlimited).");
  for (size_t i = 0; i < usage.size(); ++i)
    out += fmt::format("reservoir_tier_capacity_bytes{{tier=\"{}\",medium=\"{}\"}} {}\n", i, usage[i].medium, usage[i].quota);
  head("reservoir_tier_used_bytes", "gauge", "Bytes of data in each tier.");
  for (size_t i = 0; i < usage.size(); ++i)
    out += fmt::format("reservoir_tier_used_bytes{{tier=\"{}\",medium=\"{}\"}} {}\n", i, usage[i].medium, usage[i].used);
  head("reservoir_tier_reserved_bytes", "gauge", "Room held in each tier for data being written or moved.");
  for (size_t i = 0; i < usage.size(); ++i)
    out += fmt::format("reservoir_tier_reserved_bytes{{tier=\"{}\",medium=\"{}\"}} {}\n", i, usage[i].medium, usage[i].reserved);
  head("reservoir_tier_evictable_units", "gauge", "Clean units ranked for eviction in each tier.");
  for (size_t i = 0; i < usage.size(); ++i)
    out += fmt::format("reservoir_tier_evictable_units{{tier=\"{}\",medium=\"{}\"}} {}\n", i, usage[i].medium, usage[i].units);
  head("reservoir_cache_evictions_total", "counter", "Units that left a tier, by reason (capacity, demote, ttl, free).");
  for (auto& [k, n] : engine_.store().space().evictions())
    out += fmt::format("reservoir_cache_evictions_total{{tier=\"{}\",reason=\"{}\"}} {}\n", k.first, k.second, n);
  return out;
}

}  // namespace reservoir::admin
