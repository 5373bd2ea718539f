#include "admin/admin.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/json_text.h"
#include "s3/sigv4.h"

namespace reservoir::admin {

using http::awaitable;
using nlohmann::json;

namespace {

struct Query {
  std::map<std::string, std::string> kv;
  bool bad = false;  // a name or value that is not valid percent-encoding
  std::string get(const std::string& k, const std::string& d = "") const {
    auto it = kv.find(k);
    return it == kv.end() ? d : it->second;
  }
};

Query parse_query(const std::string& raw) {
  Query q;
  size_t pos = 0;
  while (pos < raw.size()) {
    size_t amp = raw.find('&', pos);
    if (amp == std::string::npos) amp = raw.size();
    std::string kv = raw.substr(pos, amp - pos);
    pos = amp + 1;
    size_t eq = kv.find('=');
    auto k = s3::uri_decode(kv.substr(0, eq));
    auto v = eq == std::string::npos ? std::optional<std::string>("") : s3::uri_decode(kv.substr(eq + 1));
    if (k && v) q.kv[*k] = *v;
    else q.bad = true;
  }
  return q;
}

awaitable<void> reply(http::ResponseWriter& resp, int status, const std::string& body,
                      const char* type = "application/json") {
  http::Headers h;
  h.emplace_back("Content-Type", type);
  if ((co_await resp.send_head(status, h, body.size())).ok())
    (void)co_await resp.send_body(body.data(), body.size());
}

std::string metrics_text(s3::Engine& e) {
  auto s = e.store().stats();
  std::string out;
  auto gauge = [&](const char* name, const char* help) { out += fmt::format("# HELP {} {}\n# TYPE {} gauge\n", name, help, name); };
  auto counter = [&](const char* name, const char* help) { out += fmt::format("# HELP {} {}\n# TYPE {} counter\n", name, help, name); };
  // A metric without labels: its help, type and value.
  auto single = [&](const char* type, const char* name, const char* help, uint64_t value) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, value);
  };
  single("gauge", "reservoir_dirty_objects", "Acknowledged objects not yet persisted.", s.dirty_objects);
  single("gauge", "reservoir_dirty_bytes", "Bytes of acknowledged objects not yet persisted.", s.dirty_bytes);
  auto ix = e.store().index_stats();
  single("gauge", "reservoir_index_blob_bytes", "Bytes of the index's blob files (small objects' data).",
         ix.blob_bytes);
  single("gauge", "reservoir_index_blob_garbage_bytes", "Bytes of the index's blob files counted as dead.",
         ix.blob_garbage_bytes);
  single("counter", "reservoir_index_blob_collections_total", "Garbage collections of the index's blob files.",
         ix.blob_collections);
  auto md = e.store().metadata_records();
  single("gauge", "reservoir_cache_metadata_records", "Persisted records that hold no data (metadata only).",
         md.records);
  single("counter", "reservoir_cache_metadata_records_forgotten_total",
         "Metadata-only records forgotten beyond cache.max_metadata_records.", md.forgotten);
  single("gauge", "reservoir_cache_objects_lost_at_start",
         "Acknowledged objects whose unsynced data (durability none, transient) did not survive the last stop.",
         e.store().lost_at_open());
  auto stats = e.persister().stats();
  gauge("reservoir_persist_queued", "Keys waiting for upload.");
  for (auto& m : stats) out += fmt::format("reservoir_persist_queued{{mount=\"{}\"}} {}\n", m.mount, m.queued);
  gauge("reservoir_persist_in_flight", "Uploads running.");
  for (auto& m : stats) out += fmt::format("reservoir_persist_in_flight{{mount=\"{}\"}} {}\n", m.mount, m.in_flight);
  gauge("reservoir_persist_oldest_dirty_seconds", "Age of the oldest queued write.");
  for (auto& m : stats)
    out += fmt::format("reservoir_persist_oldest_dirty_seconds{{mount=\"{}\"}} {:.3f}\n", m.mount, m.oldest_dirty_ms / 1000.0);
  gauge("reservoir_persist_concurrency", "Current upload concurrency (AIMD).");
  for (auto& m : stats) out += fmt::format("reservoir_persist_concurrency{{mount=\"{}\"}} {:.2f}\n", m.mount, m.concurrency);
  counter("reservoir_persist_ops_total", "Persist operations by result.");
  for (auto& m : stats) {
    out += fmt::format("reservoir_persist_ops_total{{mount=\"{}\",result=\"ok\"}} {}\n", m.mount, m.persisted);
    out += fmt::format("reservoir_persist_ops_total{{mount=\"{}\",result=\"retry\"}} {}\n", m.mount, m.retries);
    out += fmt::format("reservoir_persist_ops_total{{mount=\"{}\",result=\"parked\"}} {}\n", m.mount, m.parked);
  }
  counter("reservoir_backend_throttled_total", "SlowDown/503 answers from the under store.");
  for (auto& m : stats) out += fmt::format("reservoir_backend_throttled_total{{mount=\"{}\"}} {}\n", m.mount, m.throttled);
  out += "# HELP reservoir_backend_request_seconds Latency of under-store uploads and deletes.\n"
         "# TYPE reservoir_backend_request_seconds histogram\n";
  for (auto& m : stats) {
    uint64_t cum = 0;
    for (size_t i = 0; i < persist::LatencyHistogram::kBuckets; ++i) {
      cum += m.latency.counts[i];
      out += fmt::format("reservoir_backend_request_seconds_bucket{{mount=\"{}\",le=\"{}\"}} {}\n", m.mount,
                         persist::LatencyHistogram::kBounds[i], cum);
    }
    cum += m.latency.counts[persist::LatencyHistogram::kBuckets];
    out += fmt::format("reservoir_backend_request_seconds_bucket{{mount=\"{}\",le=\"+Inf\"}} {}\n", m.mount, cum);
    out += fmt::format("reservoir_backend_request_seconds_sum{{mount=\"{}\"}} {:.6f}\n", m.mount, m.latency.sum);
    out += fmt::format("reservoir_backend_request_seconds_count{{mount=\"{}\"}} {}\n", m.mount, m.latency.total);
  }
  return out;
}

// JSON bodies are built outside coroutines: GCC 12 miscompiles braced
// initializers with string literals inside coroutine bodies.
std::string sync_json(const persist::SyncResult& r) {
  json j{{"done", r.done}, {"pending", r.pending}, {"parked", json::array()}};
  for (auto& [k, why] : r.parked) j["parked"].push_back({{"key", k}, {"reason", why}});
  return json_text(j) + "\n";
}

std::string status_json(s3::Engine& engine, const std::string& bucket, const std::string& prefix) {
  auto sum = engine.persister().summarize(bucket, prefix);
  json j{{"prefix", bucket.empty() ? "" : bucket + "/" + prefix},
         {"dirty_objects", sum.dirty_objects},
         {"dirty_bytes", sum.dirty_bytes},
         {"tombstones", sum.tombstones},
         {"oldest_dirty_age_ms", sum.oldest_dirty_age_ms},
         {"parked", json::array()},
         {"mounts", json::array()}};
  for (auto& [k, why] : sum.parked) j["parked"].push_back({{"key", k}, {"reason", why}});
  for (auto& m : engine.persister().stats()) {
    double avg = m.latency.total ? m.latency.sum / static_cast<double>(m.latency.total) : 0;
    j["mounts"].push_back({{"mount", m.mount}, {"queued", m.queued}, {"in_flight", m.in_flight},
                           {"persisted", m.persisted}, {"retries", m.retries}, {"parked", m.parked},
                           {"throttled", m.throttled}, {"concurrency", m.concurrency},
                           {"max_concurrency", m.max_concurrency}, {"oldest_dirty_ms", m.oldest_dirty_ms},
                           {"recent_persist_rate", m.recent_rate}, {"backend_latency_avg_ms", avg * 1000}});
  }
  return json_text(j) + "\n";
}

std::string retry_json(const Result<uint64_t>& n) {
  if (!n.ok()) return json_text(json{{"error", n.status().to_string()}}) + "\n";
  return json_text(json{{"retried", *n}}) + "\n";
}

std::optional<int64_t> opt_int(const Query& q, const std::string& k) {
  std::string v = q.get(k);
  if (v.empty()) return std::nullopt;
  try {
    return std::stoll(v);
  } catch (...) {
    return std::nullopt;
  }
}

// The cache operations; nullopt when `path` is not one of them.
std::optional<Reply> cache_call(CacheAdmin& cache, const std::string& method, const std::string& path, const Query& q) {
  bool post = method == "POST";
  if (path == "/admin/v1/load" && post) return cache.start_load(q.get("prefix"), static_cast<int>(opt_int(q, "concurrency").value_or(0)));
  if (path == "/admin/v1/jobs" && !post) return cache.job(q.get("id"));
  if (path == "/admin/v1/free" && post) return cache.free(q.get("prefix"));
  if (path == "/admin/v1/pin" && post) return cache.set_rule(q.get("prefix"), true, std::nullopt, "");
  if (path == "/admin/v1/unpin" && post) return cache.set_rule(q.get("prefix"), false, std::nullopt, "");
  if (path == "/admin/v1/ttl" && post) {
    auto ms = opt_int(q, "ttl_ms");
    if (!ms) return Reply{400, "{\"error\":\"ttl_ms is required\"}\n"};
    return cache.set_rule(q.get("prefix"), std::nullopt, ms, q.get("action"));
  }
  if (path == "/admin/v1/rules" && !post) return cache.rules();
  if (path == "/admin/v1/stat" && !post) return cache.stat(q.get("path"));
  return std::nullopt;
}

awaitable<void> handle(s3::Engine& engine, const Config& config, boost::asio::thread_pool& pool, CacheAdmin& cache,
                       const http::Request& req, http::BodyReader&, http::ResponseWriter& resp) {
  const std::string& path = req.raw_path;
  if (path == "/health") {
    co_await reply(resp, 200, "ok\n", "text/plain");
    co_return;
  }
  if (path == "/metrics") {
    std::string text = co_await http::run_blocking(pool, [&] { return metrics_text(engine) + cache.metrics(); });
    co_await reply(resp, 200, text, "text/plain; version=0.0.4");
    co_return;
  }
  if (req.header_or("authorization") != "Bearer " + config.auth.secret_key) {
    co_await reply(resp, 401, R"({"error":"missing or wrong 'Authorization: Bearer <secret_key>'"})");
    co_return;
  }
  Query q = parse_query(req.raw_query);
  // (A parameter dropped for its bad encoding would widen what a call acts
  // on: a retry-parked of every bucket instead of one prefix.)
  if (q.bad) {
    co_await reply(resp, 400, R"({"error":"the query is not valid percent-encoding"})");
    co_return;
  }
  if (path == "/admin/v1/sync" && req.method == "POST") {
    auto bp = split_prefix(q.get("prefix"));
    std::string bucket = bp.first, prefix = bp.second;
    bool wait = q.get("wait", "true") != "false";
    std::string ts = q.get("timeout", "3600");
    if (ts.empty() || ts.size() > 9 || ts.find_first_not_of("0123456789") != std::string::npos) {
      co_await reply(resp, 400, R"({"error":"timeout must be a number of seconds, at most 999999999"})");
      co_return;
    }
    int64_t timeout_s = std::stoll(ts);
    auto timeout = wait ? std::chrono::milliseconds(timeout_s * 1000) : std::chrono::milliseconds(0);
    auto r = co_await http::run_blocking(pool, [&] {
      return engine.persister().sync(bucket, prefix, timeout);
    });
    co_await reply(resp, 200, sync_json(r));
    co_return;
  }
  if (path == "/admin/v1/persist-status" && req.method == "GET") {
    auto bp = split_prefix(q.get("prefix"));
    std::string body = co_await http::run_blocking(pool, [&] { return status_json(engine, bp.first, bp.second); });
    co_await reply(resp, 200, body);
    co_return;
  }
  if (path == "/admin/v1/retry-parked" && req.method == "POST") {
    auto bp = split_prefix(q.get("prefix"));
    std::string bucket = bp.first, prefix = bp.second;
    auto n = co_await http::run_blocking(pool, [&] {
      return engine.retry_parked(bucket, prefix);
    });
    co_await reply(resp, n.ok() ? 200 : 500, retry_json(n));
    co_return;
  }
  auto r = co_await http::run_blocking(pool, [&] { return cache_call(cache, req.method, path, q); });
  if (r) {
    co_await reply(resp, r->first, r->second);
    co_return;
  }
  co_await reply(resp, 404, R"({"error":"no such admin endpoint"})");
}

}  // namespace

http::Handler make_admin_handler(s3::Engine& engine, const Config& config, boost::asio::thread_pool& pool,
                                 CacheAdmin& cache) {
  return [&engine, &config, &pool, &cache](const http::Request& req, http::BodyReader& body,
                                           http::ResponseWriter& resp) -> awaitable<void> {
    return handle(engine, config, pool, cache, req, body, resp);
  };
}

}  // namespace reservoir::admin
