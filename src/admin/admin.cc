#include "admin/admin.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "s3/sigv4.h"

namespace reservoir::admin {

using http::awaitable;
using nlohmann::json;

namespace {

struct Query {
  std::map<std::string, std::string> kv;
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

// "bucket/prefix" -> (bucket, prefix)
std::pair<std::string, std::string> split_prefix(std::string p) {
  while (!p.empty() && p.front() == '/') p.erase(0, 1);
  auto slash = p.find('/');
  if (slash == std::string::npos) return {p, ""};
  return {p.substr(0, slash), p.substr(slash + 1)};
}

std::string metrics_text(s3::Engine& e) {
  auto s = e.store().stats();
  std::string out;
  out += "# HELP reservoir_dirty_objects Acknowledged objects not yet persisted.\n# TYPE reservoir_dirty_objects gauge\n";
  out += fmt::format("reservoir_dirty_objects {}\n", s.dirty_objects);
  out += "# HELP reservoir_dirty_bytes Bytes of acknowledged objects not yet persisted.\n# TYPE reservoir_dirty_bytes gauge\n";
  out += fmt::format("reservoir_dirty_bytes {}\n", s.dirty_bytes);
  out += "# TYPE reservoir_persist_queued gauge\n# TYPE reservoir_persist_in_flight gauge\n";
  out += "# TYPE reservoir_persist_ops_total counter\n# TYPE reservoir_persist_oldest_dirty_seconds gauge\n";
  for (auto& m : e.persister().stats()) {
    out += fmt::format("reservoir_persist_queued{{mount=\"{}\"}} {}\n", m.mount, m.queued);
    out += fmt::format("reservoir_persist_in_flight{{mount=\"{}\"}} {}\n", m.mount, m.in_flight);
    out += fmt::format("reservoir_persist_ops_total{{mount=\"{}\",result=\"ok\"}} {}\n", m.mount, m.persisted);
    out += fmt::format("reservoir_persist_ops_total{{mount=\"{}\",result=\"retry\"}} {}\n", m.mount, m.retries);
    out += fmt::format("reservoir_persist_ops_total{{mount=\"{}\",result=\"parked\"}} {}\n", m.mount, m.parked);
    out += fmt::format("reservoir_persist_oldest_dirty_seconds{{mount=\"{}\"}} {:.3f}\n", m.mount, m.oldest_dirty_ms / 1000.0);
  }
  return out;
}

// JSON bodies are built outside coroutines: GCC 12 miscompiles braced
// initializers with string literals inside coroutine bodies.
std::string sync_json(const persist::SyncResult& r) {
  json j{{"done", r.done}, {"pending", r.pending}, {"parked", json::array()}};
  for (auto& [k, why] : r.parked) j["parked"].push_back({{"key", k}, {"reason", why}});
  return j.dump() + "\n";
}

std::string status_json(s3::Engine& engine) {
  auto s = engine.store().stats();
  json j{{"dirty_objects", s.dirty_objects}, {"dirty_bytes", s.dirty_bytes}, {"mounts", json::array()}};
  for (auto& m : engine.persister().stats())
    j["mounts"].push_back({{"mount", m.mount}, {"queued", m.queued}, {"in_flight", m.in_flight},
                           {"persisted", m.persisted}, {"retries", m.retries}, {"parked", m.parked},
                           {"oldest_dirty_ms", m.oldest_dirty_ms}});
  return j.dump() + "\n";
}

std::string retry_json(const Result<uint64_t>& n) {
  if (!n.ok()) return json{{"error", n.status().to_string()}}.dump() + "\n";
  return json{{"retried", *n}}.dump() + "\n";
}

awaitable<void> handle(s3::Engine& engine, const Config& config, boost::asio::thread_pool& pool, const http::Request& req,
                       http::BodyReader&, http::ResponseWriter& resp) {
  const std::string& path = req.raw_path;
  if (path == "/health") {
    co_await reply(resp, 200, "ok\n", "text/plain");
    co_return;
  }
  if (path == "/metrics") {
    co_await reply(resp, 200, metrics_text(engine), "text/plain; version=0.0.4");
    co_return;
  }
  if (req.header_or("authorization") != "Bearer " + config.auth.secret_key) {
    co_await reply(resp, 401, R"({"error":"missing or wrong 'Authorization: Bearer <secret_key>'"})");
    co_return;
  }
  Query q = parse_query(req.raw_query);
  if (path == "/admin/v1/sync" && req.method == "POST") {
    auto bp = split_prefix(q.get("prefix"));
    std::string bucket = bp.first, prefix = bp.second;
    bool wait = q.get("wait", "true") != "false";
    int64_t timeout_s = 3600;
    try {
      timeout_s = std::stoll(q.get("timeout", "3600"));
    } catch (...) {
    }
    auto timeout = wait ? std::chrono::milliseconds(timeout_s * 1000) : std::chrono::milliseconds(0);
    auto r = co_await http::run_blocking(pool, [&] {
      return engine.persister().sync(bucket, prefix, timeout);
    });
    co_await reply(resp, 200, sync_json(r));
    co_return;
  }
  if (path == "/admin/v1/persist-status" && req.method == "GET") {
    co_await reply(resp, 200, status_json(engine));
    co_return;
  }
  if (path == "/admin/v1/retry-parked" && req.method == "POST") {
    auto bp = split_prefix(q.get("prefix"));
    std::string bucket = bp.first, prefix = bp.second;
    auto n = co_await http::run_blocking(pool, [&] {
      return engine.persister().retry_parked(bucket, prefix);
    });
    co_await reply(resp, n.ok() ? 200 : 500, retry_json(n));
    co_return;
  }
  co_await reply(resp, 404, R"({"error":"no such admin endpoint"})");
}

}  // namespace

http::Handler make_admin_handler(s3::Engine& engine, const Config& config, boost::asio::thread_pool& pool) {
  return [&engine, &config, &pool](const http::Request& req, http::BodyReader& body,
                                   http::ResponseWriter& resp) -> awaitable<void> {
    return handle(engine, config, pool, req, body, resp);
  };
}

}  // namespace reservoir::admin
