// Typed, validated configuration. One TOML file (see docs/configuration.md);
// command-line flags override it. Every field documents its unit.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace reservoir {

enum class WriteMode { write_back, through, cache_through, transient };
// cache: keep what is read (default); no_cache: serve misses without keeping
// them; promote: also move data read from a lower tier to the fastest one.
enum class ReadType { cache, no_cache, promote };
// What a path TTL does when it expires: drop the cached copy, or delete the
// object everywhere (cache and under store).
enum class TtlAction { free, del };
const char* read_type_name(ReadType t);
Result<ReadType> parse_read_type(std::string_view s);
const char* ttl_action_name(TtlAction a);
Result<TtlAction> parse_ttl_action(std::string_view s);
enum class OnFull { through, reject };
// fsync: data and index are fsynced before a write-back PUT is acknowledged.
// none:  written to the OS page cache only; survives a process crash, not power loss.
enum class Durability { fsync, none };

const char* write_mode_name(WriteMode m);
Result<WriteMode> parse_write_mode(std::string_view s);

struct ServerConfig {
  std::string s3_listen = "127.0.0.1:9000";
  std::string admin_listen = "127.0.0.1:9001";
  std::string data_dir = "./reservoir-data";
  std::string tls_listen;              // "" = no TLS listener
  std::string tls_cert;                // PEM certificate chain file
  std::string tls_key;                 // PEM private key file
  std::vector<std::string> domains = {"localhost"};  // virtual-hosted-style suffixes
  int threads = 0;                     // network threads; 0 = number of cores
  int io_threads = 16;                 // blocking disk/index threads
  int max_connections = 4096;
  uint64_t max_header_bytes = 16 * 1024;
  std::chrono::milliseconds header_timeout{30'000};  // whole header must arrive within
  std::chrono::milliseconds idle_timeout{60'000};    // keep-alive idle / body read stall
  std::chrono::milliseconds drain_timeout{10'000};   // graceful drain on SIGTERM
  Durability durability = Durability::fsync;
  uint64_t inline_max_bytes = 64 * 1024;  // objects up to this size live in the index, not in files
  uint64_t index_journal_bytes = 32ull << 20;  // ring file that makes synced index writes durable
  std::string log_level = "info";
};

struct AuthConfig {
  std::string access_key = "reservoir";
  std::string secret_key = "reservoir-secret";
  bool allow_anonymous = false;
  std::string region = "us-east-1";
};

struct TierConfig {
  std::string medium = "ssd";          // mem | ssd | hdd (mem: a tmpfs such as /dev/shm; clean data only)
  std::string path;                    // directory
  uint64_t quota = 0;                  // bytes; 0 = unlimited
};

struct CacheConfig {
  uint64_t page_size = 1 << 20;        // read-through objects are fetched and cached by page
  std::string eviction = "lru";        // lru | lfu
  double high_watermark = 0.95;        // a tier above this share of its quota is evicted ...
  double low_watermark = 0.85;         // ... down to this share, ahead of need
  int readahead_pages = 4;             // pages fetched ahead of a sequential reader
  std::chrono::milliseconds ttl_check_interval{10'000};  // how often path TTLs are applied
  int load_concurrency = 8;            // parallel fetches of `reservoir load`
  uint64_t memory = 64ull << 20;       // small objects (<= 64 KiB) also held in memory, in all; 0 = none
  uint64_t max_metadata_records = 1'000'000;  // records holding no data kept at most (LRU beyond); 0 = no limit
};

struct PersistConfig {
  double max_ops_per_sec = 0;          // 0 = unlimited
  uint64_t max_bytes_per_sec = 0;      // 0 = unlimited
  int concurrency = 8;                 // parallel uploads
  std::chrono::milliseconds delay{0};  // hold new writes so overwrites coalesce
};

struct MountConfig {
  std::string path = "/";              // "/" or "/<bucket>"
  std::string ufs;                     // file:///dir, file://./rel, mem://name, s3://bucket/prefix
  std::string endpoint;                // s3 only: "http://127.0.0.1:5000"; "" = AWS
  std::string region = "us-east-1";    // s3 only
  std::optional<bool> path_style;      // s3 only; default: true with an endpoint, else false
  std::string access_key, secret_key;  // s3 only; else the AWS environment / ~/.aws/credentials
  uint64_t multipart_threshold = 64ull << 20;  // s3 only: larger uploads use multipart
  uint64_t part_size = 16ull << 20;            // s3 only
  WriteMode write_mode = WriteMode::write_back;
  int replicas = 1;
  PersistConfig persist;
  OnFull on_full = OnFull::through;
  uint64_t dirty_max_bytes = 0;        // 0 = unlimited (bounded by the cache disk)
  uint64_t dirty_max_objects = 0;      // 0 = unlimited
  // How long HEAD/LIST answers of the under store are trusted; 0 = check on
  // every access; unset = never re-check (Reservoir is the only writer).
  std::optional<std::chrono::milliseconds> metadata_ttl;
};

struct PolicyConfig {
  std::string path;                    // "/bucket/prefix/"
  std::optional<WriteMode> write_mode;
  std::optional<std::chrono::milliseconds> ttl;  // since the object's last write
  std::optional<TtlAction> ttl_action;           // default: del
  std::optional<bool> pin;                       // never evicted
  std::optional<ReadType> read_type;
};

struct Config {
  ServerConfig server;
  AuthConfig auth;
  std::vector<TierConfig> tiers;
  CacheConfig cache;
  std::vector<MountConfig> mounts;
  std::vector<PolicyConfig> policies;
  bool default_credentials() const;
};

// The embedded defaults: everything under ./reservoir-data, root mounted on a
// local directory, write-back.
Config default_config();
Result<Config> parse_config(std::string_view toml_text, std::string_view origin = "config");
Result<Config> load_config_file(const std::string& path);
// Fills derived defaults (tiers, mounts) and checks consistency.
Status finalize_config(Config& c);
// Human-readable effective configuration (secrets masked) for the start-up log.
std::string describe_config(const Config& c);

}  // namespace reservoir
