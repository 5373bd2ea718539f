#include "bench/command.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "bench/runner.h"
#include "bench/stats.h"
#include "common/units.h"

namespace reservoir::bench {
namespace {

std::string fmt_ms(double ms) {
  char b[32];
  std::snprintf(b, sizeof b, ms < 10 ? "%.3f" : "%.1f", ms);
  return b;
}

std::string errors_text(const OpResult& r) {
  if (r.errors == 0) return "0";
  std::string s = std::to_string(r.errors) + " (";
  bool first = true;
  for (const auto& [k, v] : r.errors_by_code) {
    if (!first) s += ", ";
    first = false;
    s += k + ": " + std::to_string(v);
  }
  return s + ")";
}

void print_header() {
  std::cout << "| endpoint | op | conc | ops | ops/s | MB/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors |\n"
            << "|---|---|---|---|---|---|---|---|---|---|---|---|\n";
}

void print_row(const StepResult& s, const OpResult& r, const std::string& op) {
  char rate[64], mb[64];
  std::snprintf(rate, sizeof rate, "%.0f", r.ops_per_s);
  std::snprintf(mb, sizeof mb, "%.1f", r.mb_per_s);
  std::cout << "| " << s.endpoint << " | " << op << " | " << s.concurrency << " | " << r.ops << " | " << rate << " | "
            << mb << " | " << fmt_ms(r.latency.p50_ms) << " | " << fmt_ms(r.latency.p90_ms) << " | "
            << fmt_ms(r.latency.p99_ms) << " | " << fmt_ms(r.latency.p999_ms) << " | " << fmt_ms(r.latency.max_ms)
            << " | " << errors_text(r) << " |\n";
}

void print_step(const StepResult& s) {
  print_row(s, s.primary, s.op);
  if (s.by_op.size() > 1)
    for (const auto& o : s.by_op)
      if (o.op != s.op) print_row(s, o, s.op + ":" + o.op);
  std::cout.flush();
}

double ratio(double a, double b) { return b > 0 ? a / b : 0; }

nlohmann::json compare_json(const StepResult& a, const StepResult& b) {
  return {{"op", a.op},
          {"concurrency", a.concurrency},
          {"ops_per_s_ratio", ratio(a.primary.ops_per_s, b.primary.ops_per_s)},
          {"mb_per_s_ratio", ratio(a.primary.mb_per_s, b.primary.mb_per_s)},
          {"p50_ratio", ratio(a.primary.latency.p50_ms, b.primary.latency.p50_ms)},
          {"p99_ratio", ratio(a.primary.latency.p99_ms, b.primary.latency.p99_ms)}};
}

bool needs_objects(Op op) { return op == Op::get || op == Op::stat || op == Op::list || op == Op::mixed; }

uint64_t default_objects(const BenchOptions& o, Op op) {
  if (o.objects) return o.objects;
  if (op == Op::list) return 1000;
  uint64_t per = std::max<uint64_t>(o.size.max, 1);
  return std::clamp<uint64_t>((512ull << 20) / per, 1, 1000);
}

}  // namespace

CLI::App* add_bench_command(CLI::App& app, BenchCli& c) {
  auto* b = app.add_subcommand("bench", "S3 load generator: measure operations/s, throughput and latency");
  b->add_option("ops", c.ops, "Operations, comma-separated: put, get, raw (GET after its own PUT), stat, list, "
                              "delete, multipart, mixed")->capture_default_str();
  b->add_option("--endpoint", c.endpoint, "S3 endpoint http://HOST:PORT")->capture_default_str();
  b->add_option("--access-key", c.access_key, "Access key")->capture_default_str();
  b->add_option("--secret-key", c.secret_key, "Secret key")->capture_default_str();
  b->add_option("--region", c.region, "SigV4 region")->capture_default_str();
  b->add_option("--bucket", c.bucket, "Bucket (created if missing unless --anonymous)")->capture_default_str();
  b->add_flag("--anonymous,--webdav", c.anonymous, "No signature: plain HTTP PUT/GET/HEAD/DELETE of /bucket/key (nginx WebDAV)");
  b->add_option("--compare", c.compare, "A second endpoint; each step runs on both, interleaved, and ratios are printed");
  b->add_option("--compare-access-key", c.compare_access_key, "Access key of --compare (default: --access-key)");
  b->add_option("--compare-secret-key", c.compare_secret_key, "Secret key of --compare (default: --secret-key)");
  b->add_option("--compare-bucket", c.compare_bucket, "Bucket of --compare (default: --bucket)");
  b->add_flag("--compare-anonymous", c.compare_anonymous, "No signature on --compare");
  b->add_option("--obj-size", c.obj_size, "Object size: 10KiB, or uniform in a range 4KiB-1MiB")->capture_default_str();
  b->add_option("-c,--concurrency", c.concurrency, "Concurrent workers (connections); a list sweeps: 1,4,16,64")
      ->capture_default_str();
  b->add_option("-d,--duration", c.duration, "Measured time per step")->capture_default_str();
  b->add_option("--ops", c.ops_count, "Operations per step instead of --duration");
  b->add_option("--warmup", c.warmup, "Unmeasured time before each step")->capture_default_str();
  b->add_option("--threads", c.threads, "io_context threads (default: one per core)");
  b->add_option("--objects", c.objects, "Objects prepared for get/stat/list/mixed (default: up to 1000, 512MiB in all)");
  b->add_option("--part-size", c.part_size, "Part size of multipart")->capture_default_str();
  b->add_option("--mix", c.mix, "Weights of a mixed step (put, get, stat, delete)")->capture_default_str();
  b->add_flag("--verify", c.verify, "Compare every body read with what was written (length is always checked)");
  b->add_flag("--no-prepare", c.no_prepare,
              "The objects exist already (put by an earlier run with the same --prefix, --objects, --obj-size, --seed)");
  b->add_flag("--sequential", c.sequential,
              "get/stat read objects 0, 1, 2, ... in order: with --ops = --objects each read is that object's first");
  b->add_option("--seed", c.seed, "Seed of the data and object sizes (default: random)");
  b->add_option("--prefix", c.prefix, "Key prefix (default: a random bench-XXXX/)");
  b->add_flag("--no-progress", c.no_progress, "No live progress line on stderr");
  b->add_option("--json", c.json_file, "Write the results as JSON to this file");
  return b;
}

Result<BenchOptions> to_options(const BenchCli& c) {
  BenchOptions o;
  auto ops = parse_ops(c.ops);
  if (!ops.ok()) return ops.status();
  o.ops = *ops;
  auto size = parse_size_dist(c.obj_size);
  if (!size.ok()) return size.status();
  o.size = *size;
  auto conc = parse_int_list(c.concurrency);
  if (!conc.ok()) return conc.status();
  o.concurrency = *conc;
  auto dur = parse_duration(c.duration);
  if (!dur.ok()) return dur.status();
  o.duration_s = dur->count() / 1000.0;
  auto warm = parse_duration(c.warmup);
  if (!warm.ok()) return warm.status();
  o.warmup_s = warm->count() / 1000.0;
  o.op_count = c.ops_count;
  o.threads = c.threads;
  o.objects = c.objects;
  auto part = parse_size(c.part_size);
  if (!part.ok()) return part.status();
  o.part_size = *part;
  auto mix = parse_mix(c.mix);
  if (!mix.ok()) return mix.status();
  o.mix = *mix;
  o.verify = c.verify;
  o.no_prepare = c.no_prepare;
  o.sequential = c.sequential;
  o.seed = c.seed;
  o.prefix = c.prefix;
  o.progress = !c.no_progress;
  o.json_file = c.json_file;
  o.target = Endpoint{c.endpoint, "", 80, c.access_key, c.secret_key, c.region, c.bucket, c.anonymous, "A"};
  if (auto st = parse_endpoint_url(o.target); !st.ok()) return st;
  if (!c.compare.empty()) {
    Endpoint e{c.compare, "", 80,
               c.compare_access_key.empty() ? c.access_key : c.compare_access_key,
               c.compare_secret_key.empty() ? c.secret_key : c.compare_secret_key, c.region,
               c.compare_bucket.empty() ? c.bucket : c.compare_bucket, c.compare_anonymous, "B"};
    if (auto st = parse_endpoint_url(e); !st.ok()) return st;
    o.compare = e;
  }
  return o;
}

int bench_command(const BenchCli& cli) {
  auto parsed = to_options(cli);
  if (!parsed.ok()) {
    std::cerr << "reservoir bench: " << parsed.status().message() << "\n";
    return 2;
  }
  const BenchOptions opt = std::move(parsed).value();
  std::vector<Endpoint> eps{opt.target};
  if (opt.compare) eps.push_back(*opt.compare);

  std::random_device rd;
  uint64_t seed = opt.seed ? opt.seed : (static_cast<uint64_t>(rd()) << 32) ^ rd();
  std::string prefix = opt.prefix;
  if (prefix.empty()) {
    char b[32];
    std::snprintf(b, sizeof b, "bench-%08llx/", static_cast<unsigned long long>(seed & 0xffffffffULL));
    prefix = b;
  } else if (!prefix.ends_with('/')) {
    prefix += '/';
  }
  Dataset ds;
  ds.prefix = prefix;
  ds.generate(opt.size, seed);

  for (const auto& ep : eps) {
    if (auto st = ensure_bucket(ep); !st.ok()) {
      std::cerr << "reservoir bench: " << st.message() << "\n";
      return 2;
    }
  }
  std::cerr << "reservoir bench: " << (opt.op_count ? std::to_string(opt.op_count) + " ops" : cli.duration)
            << " per step, objects " << cli.obj_size << ", prefix " << prefix << "; A = " << opt.target.url;
  if (opt.compare) std::cerr << ", B = " << opt.compare->url;
  std::cerr << "\n";

  nlohmann::json out;
  out["prefix"] = prefix;
  out["endpoints"] = nlohmann::json::array();
  for (const auto& ep : eps) out["endpoints"].push_back({{"label", ep.label}, {"url", ep.url}, {"anonymous", ep.anonymous}});
  out["options"] = {{"ops", cli.ops},           {"obj_size", cli.obj_size}, {"size_min", opt.size.min},
                    {"size_max", opt.size.max}, {"concurrency", opt.concurrency},
                    {"duration_s", opt.duration_s}, {"op_count", opt.op_count}, {"warmup_s", opt.warmup_s},
                    {"threads", opt.threads},   {"verify", opt.verify}, {"mix", cli.mix}};
  out["steps"] = nlohmann::json::array();
  out["compare"] = nlohmann::json::array();
  std::vector<nlohmann::json> ratios;
  uint64_t prepared = 0;  // objects prepared so far (the same set on every endpoint)
  bool any_errors = false;
  print_header();
  for (Op op : opt.ops) {
    if (needs_objects(op) && default_objects(opt, op) > prepared) {
      ds.objects = default_objects(opt, op);
      int pc = std::min(32, *std::max_element(opt.concurrency.begin(), opt.concurrency.end()));
      for (const auto& ep : eps) {
        if (opt.no_prepare) break;
        if (auto st = prepare_objects(opt, ep, ds, pc); !st.ok()) {
          std::cerr << "reservoir bench: " << st.message() << "\n";
          return 1;
        }
      }
      prepared = ds.objects;
    }
    for (int c : opt.concurrency) {
      std::vector<StepResult> pair;
      for (const auto& ep : eps) {
        auto r = run_step(opt, ep, ds, op, c);
        if (!r.ok()) {
          std::cerr << "reservoir bench: " << r.status().message() << "\n";
          return 1;
        }
        print_step(*r);
        for (const auto& o : r->by_op) any_errors = any_errors || o.errors > 0;
        out["steps"].push_back(to_json(*r));
        pair.push_back(std::move(r).value());
      }
      if (pair.size() == 2) ratios.push_back(compare_json(pair[0], pair[1]));
    }
  }
  if (!ratios.empty()) {
    std::cout << "\nRatios A/B (A = " << opt.target.url << ", B = " << opt.compare->url << ")\n\n"
              << "| op | conc | ops/s A/B | MB/s A/B | p50 A/B | p99 A/B |\n|---|---|---|---|---|---|\n";
    for (const auto& r : ratios) {
      char b[200];
      std::snprintf(b, sizeof b, "| %s | %d | %.2f | %.2f | %.3f | %.3f |\n", r["op"].get<std::string>().c_str(),
                    r["concurrency"].get<int>(), r["ops_per_s_ratio"].get<double>(),
                    r["mb_per_s_ratio"].get<double>(), r["p50_ratio"].get<double>(), r["p99_ratio"].get<double>());
      std::cout << b;
      out["compare"].push_back(r);
    }
  }
  if (!opt.json_file.empty()) {
    std::ofstream f(opt.json_file);
    f << out.dump(2) << "\n";
    if (!f) {
      std::cerr << "reservoir bench: cannot write " << opt.json_file << "\n";
      return 2;
    }
  }
  return any_errors ? 1 : 0;
}

}  // namespace reservoir::bench
