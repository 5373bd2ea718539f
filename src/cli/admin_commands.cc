#include "cli/admin_commands.h"

#include <unistd.h>

#include <chrono>
#include <iostream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/units.h"
#include "http/client.h"
#include "s3/sigv4.h"

namespace reservoir::cli {

using nlohmann::json;

namespace {

Result<json> call(const AdminTarget& t, const std::string& method, const std::string& path, int timeout_s = 60) {
  auto opts = http::parse_endpoint(t.url);
  if (!opts.ok()) return opts.status();
  opts->io_timeout = std::chrono::seconds(timeout_s + 30);
  http::HttpClient client(opts.value());
  std::string body;
  auto r = client.fetch(method, path, {{"Authorization", "Bearer " + t.secret}}, &body);
  if (!r.ok()) return Status(r.status().code(), fmt::format("cannot reach the admin API at {}: {}", t.url, r.status().message()));
  if (r->status != 200) return unavailable(fmt::format("admin API answered {}: {}", r->status, body));
  try {
    return json::parse(body);
  } catch (const std::exception& e) {
    return internal_error(std::string("unparsable answer from the admin API: ") + e.what());
  }
}

std::string q(const std::string& prefix) { return s3::uri_encode(prefix, true); }

void print_parked(const json& parked) {
  for (auto& p : parked) std::cout << "  parked: " << p.value("key", "") << ": " << p.value("reason", "") << "\n";
}

}  // namespace

int sync_command(const AdminTarget& t, const std::string& prefix, bool wait, int timeout_s) {
  bool tty = isatty(STDERR_FILENO);
  auto start = call(t, "GET", "/admin/v1/persist-status?prefix=" + q(prefix));
  if (!start.ok()) {
    std::cerr << "reservoir: " << start.status().message() << "\n";
    return 1;
  }
  uint64_t total = (*start)["dirty_objects"].get<uint64_t>() + (*start)["tombstones"].get<uint64_t>();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  for (;;) {
    // Short server-side waits so the progress bar moves.
    int step = wait ? 1 : 0;
    auto r = call(t, "POST", fmt::format("/admin/v1/sync?prefix={}&wait={}&timeout={}", q(prefix), wait ? "true" : "false", step));
    if (!r.ok()) {
      std::cerr << "\nreservoir: " << r.status().message() << "\n";
      return 1;
    }
    uint64_t pending = (*r)["pending"].get<uint64_t>();
    total = std::max(total, pending);
    if (tty && wait) {
      uint64_t done = total - pending;
      int width = 40;
      int fill = total ? static_cast<int>(width * done / total) : width;
      fmt::print(stderr, "\r[{}{}] {}/{} persisted", std::string(fill, '#'), std::string(width - fill, ' '), done, total);
    }
    // Done only when the server says so (it answers done: false with nothing
    // pending when it cannot tell).
    bool finished = pending == 0 && (*r)["done"].get<bool>();
    if (finished || !wait || std::chrono::steady_clock::now() >= deadline) {
      if (tty && wait) fmt::print(stderr, "\n");
      if (!(*r)["parked"].empty()) {
        std::cout << "not persisted: " << (*r)["parked"].size() << " parked object(s) under '" << prefix << "'\n";
        print_parked((*r)["parked"]);
        return 2;
      }
      if (finished) {
        std::cout << "persisted: every acknowledged write under '" << prefix << "'\n";
        return 0;
      }
      std::cout << pending << " object(s) under '" << prefix << "' not persisted yet\n";
      return 1;
    }
  }
}

int persist_status_command(const AdminTarget& t, const std::string& prefix, bool as_json) {
  auto r = call(t, "GET", "/admin/v1/persist-status?prefix=" + q(prefix));
  if (!r.ok()) {
    std::cerr << "reservoir: " << r.status().message() << "\n";
    return 1;
  }
  if (as_json) {
    std::cout << r->dump(2) << "\n";
    return 0;
  }
  const json& j = *r;
  fmt::print("prefix:        '{}'\n", prefix);
  fmt::print("dirty:         {} objects, {}\n", j["dirty_objects"].get<uint64_t>(), format_size(j["dirty_bytes"].get<uint64_t>()));
  fmt::print("deletes:       {} pending\n", j["tombstones"].get<uint64_t>());
  fmt::print("oldest dirty:  {:.1f} s\n", j["oldest_dirty_age_ms"].get<int64_t>() / 1000.0);
  fmt::print("parked:        {}\n", j["parked"].size());
  print_parked(j["parked"]);
  for (auto& m : j["mounts"])
    fmt::print("mount {}: queued {}, in flight {}, persisted {}, retries {}, throttled {}, concurrency {:.1f}/{}, "
               "rate {:.1f}/s, backend latency avg {:.1f} ms\n",
               m["mount"].get<std::string>(), m["queued"].get<uint64_t>(), m["in_flight"].get<uint64_t>(),
               m["persisted"].get<uint64_t>(), m["retries"].get<uint64_t>(), m["throttled"].get<uint64_t>(),
               m["concurrency"].get<double>(), m["max_concurrency"].get<int>(), m["recent_persist_rate"].get<double>(),
               m["backend_latency_avg_ms"].get<double>());
  return 0;
}

int retry_parked_command(const AdminTarget& t, const std::string& prefix) {
  auto r = call(t, "POST", "/admin/v1/retry-parked?prefix=" + q(prefix));
  if (!r.ok()) {
    std::cerr << "reservoir: " << r.status().message() << "\n";
    return 1;
  }
  std::cout << "retried " << (*r)["retried"].get<uint64_t>() << " parked object(s)\n";
  return 0;
}

int load_command(const AdminTarget& t, const std::string& prefix, int concurrency) {
  bool tty = isatty(STDERR_FILENO);
  auto start = call(t, "POST", fmt::format("/admin/v1/load?prefix={}&concurrency={}", q(prefix), concurrency));
  if (!start.ok()) {
    std::cerr << "reservoir: " << start.status().message() << "\n";
    return 1;
  }
  uint64_t id = (*start)["id"].get<uint64_t>();
  auto began = std::chrono::steady_clock::now();
  for (;;) {
    auto r = call(t, "GET", fmt::format("/admin/v1/jobs?id={}", id));
    if (!r.ok()) {
      std::cerr << "\nreservoir: " << r.status().message() << "\n";
      return 1;
    }
    const json& j = *r;
    uint64_t total = j["bytes_total"].get<uint64_t>(), done = j["bytes_done"].get<uint64_t>();
    if (tty) {
      int width = 40;
      int fill = total ? static_cast<int>(width * done / total) : (j["listed"].get<bool>() ? width : 0);
      fmt::print(stderr, "\r[{}{}] {}/{} objects, {} / {}", std::string(fill, '#'), std::string(width - fill, ' '),
                 j["objects_done"].get<uint64_t>(), j["objects_total"].get<uint64_t>(), format_size(done),
                 format_size(total));
    }
    if (j["finished"].get<bool>()) {
      if (tty) fmt::print(stderr, "\n");
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
      if (j.contains("error")) {
        std::cout << "load of '" << prefix << "' failed: " << j["error"].get<std::string>() << "\n";
        return 1;
      }
      fmt::print("loaded {} object(s), {} under '{}' in {:.1f} s ({}/s); {} error(s)\n", j["objects_done"].get<uint64_t>(),
                 format_size(done), prefix, secs, format_size(static_cast<uint64_t>(secs > 0 ? done / secs : 0)),
                 j["errors"].get<uint64_t>());
      if (j.contains("first_error")) std::cout << "  first error: " << j["first_error"].get<std::string>() << "\n";
      return j["errors"].get<uint64_t>() ? 1 : 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

int free_command(const AdminTarget& t, const std::string& prefix) {
  auto r = call(t, "POST", "/admin/v1/free?prefix=" + q(prefix));
  if (!r.ok()) {
    std::cerr << "reservoir: " << r.status().message() << "\n";
    return 1;
  }
  const json& j = *r;
  fmt::print("freed {} object(s), {} under '{}'\n", j["freed_objects"].get<uint64_t>(),
             format_size(j["freed_bytes"].get<uint64_t>()), prefix);
  uint64_t dirty = j["refused_dirty"].get<uint64_t>(), pinned = j["refused_pinned"].get<uint64_t>();
  if (dirty + pinned == 0) return 0;
  fmt::print("kept {} object(s) not persisted yet (run `reservoir sync {} --wait` first) and {} pinned object(s) "
             "(`reservoir unpin` them first):\n", dirty, prefix, pinned);
  for (auto& k : j["refused"]) std::cout << "  " << k.get<std::string>() << "\n";
  return 2;
}

int pin_command(const AdminTarget& t, const std::string& prefix, bool pin) {
  auto r = call(t, "POST", fmt::format("/admin/v1/{}?prefix={}", pin ? "pin" : "unpin", q(prefix)));
  if (!r.ok()) {
    std::cerr << "reservoir: " << r.status().message() << "\n";
    return 1;
  }
  fmt::print("{} '{}'\n", pin ? "pinned" : "unpinned", prefix);
  return 0;
}

int ttl_command(const AdminTarget& t, const std::string& prefix, const std::string& duration, const std::string& action) {
  int64_t ms = 0;
  if (duration != "0") {
    auto d = parse_duration(duration);
    if (!d.ok()) {
      std::cerr << "reservoir: bad duration '" << duration << "': " << d.status().message() << "\n";
      return 2;
    }
    ms = d->count();
  }
  auto r = call(t, "POST", fmt::format("/admin/v1/ttl?prefix={}&ttl_ms={}&action={}", q(prefix), ms, q(action)));
  if (!r.ok()) {
    std::cerr << "reservoir: " << r.status().message() << "\n";
    return 1;
  }
  if (ms == 0) fmt::print("removed the TTL of '{}'\n", prefix);
  else fmt::print("objects under '{}' are {} {} after their last write\n", prefix, action == "free" ? "freed from the cache" : "deleted everywhere", duration);
  return 0;
}

int stat_command(const AdminTarget& t, const std::string& path, bool as_json) {
  auto r = call(t, "GET", "/admin/v1/stat?path=" + q(path));
  if (!r.ok()) {
    std::cerr << "reservoir: " << r.status().message() << "\n";
    return 1;
  }
  const json& j = *r;
  if (as_json) {
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  fmt::print("key:        {}/{}\n", j["bucket"].get<std::string>(), j["key"].get<std::string>());
  fmt::print("state:      {}\n", j["state"].get<std::string>());
  if (j.contains("size")) fmt::print("size:       {} ({} bytes)\n", format_size(j["size"].get<uint64_t>()), j["size"].get<uint64_t>());
  if (j.contains("cached_bytes")) fmt::print("cached:     {}\n", format_size(j["cached_bytes"].get<uint64_t>()));
  if (j.contains("pages_total") && !j["pages_total"].is_null())
    fmt::print("pages:      {}/{} cached ({} each)\n", j["pages_cached"].get<uint64_t>(), j["pages_total"].get<uint64_t>(),
               format_size(j["page_size"].get<uint64_t>()));
  if (j.contains("tiers"))
    for (auto& tr : j["tiers"])
      fmt::print("tier:       {} ({}): {}\n", tr["tier"].get<int>(), tr["medium"].get<std::string>(), format_size(tr["bytes"].get<uint64_t>()));
  fmt::print("pinned:     {}\n", j["pinned"].get<bool>() ? "yes" : "no");
  if (j["ttl"].is_null()) fmt::print("ttl:        none\n");
  else fmt::print("ttl:        {} ms, then {}\n", j["ttl"]["ms"].get<int64_t>(), j["ttl"]["action"].get<std::string>());
  return 0;
}

}  // namespace reservoir::cli
