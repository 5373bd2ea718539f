#include "store/meta.h"

#include <algorithm>

#include <chrono>

#include <nlohmann/json.hpp>

namespace reservoir::store {

using nlohmann::json;

const char* persist_state_name(PersistState s) {
  switch (s) {
    case PersistState::dirty: return "dirty";
    case PersistState::persisting: return "persisting";
    case PersistState::persisted: return "persisted";
    case PersistState::parked: return "parked";
    case PersistState::transient: return "transient";
  }
  return "?";
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch()).count();
}

namespace {

template <typename F>
auto decode_with(std::string_view bytes, F f) -> Result<decltype(f(json{}))> {
  try {
    return f(json::from_msgpack(bytes.begin(), bytes.end()));
  } catch (const std::exception& e) {
    return internal_error(std::string("corrupt index record: ") + e.what());
  }
}

json segs_to_json(const std::vector<Segment>& segs) {
  json a = json::array();
  for (auto& s : segs) {
    if (s.crc32c) a.push_back({s.file_id, s.size, s.in_index ? 1 : 0, s.tier, *s.crc32c});
    else if (s.tier) a.push_back({s.file_id, s.size, s.in_index ? 1 : 0, s.tier});
    else if (s.in_index) a.push_back({s.file_id, s.size, 1});
    else a.push_back({s.file_id, s.size});
  }
  return a;
}

Segment seg_from_json(const json& s) {
  Segment g{s.at(0).get<uint64_t>(), s.at(1).get<uint64_t>(), s.size() > 2 && s.at(2).get<int>() == 1, 0, std::nullopt};
  if (s.size() > 3) g.tier = s.at(3).get<uint8_t>();
  if (s.size() > 4) g.crc32c = s.at(4).get<uint32_t>();
  return g;
}

}  // namespace

std::string encode(const ObjectMeta& m) {
  json j;
  j["v"] = m.version;
  if (m.deleted) j["del"] = true;
  if (!m.cached) j["nc"] = true;
  j["sz"] = m.size;
  j["et"] = m.etag;
  j["crc"] = m.crc32c;
  if (!m.content_type.empty()) j["ct"] = m.content_type;
  if (!m.headers.empty()) j["h"] = m.headers;
  if (!m.user_meta.empty()) j["um"] = m.user_meta;
  if (!m.checksums.empty()) j["ck"] = m.checksums;
  if (!m.tags.empty()) j["tg"] = m.tags;
  j["mt"] = m.mtime_ms;
  j["st"] = static_cast<int>(m.state);
  if (!m.park_reason.empty()) j["pr"] = m.park_reason;
  j["sg"] = segs_to_json(m.segments);
  if (!m.part_sizes.empty()) j["ps"] = m.part_sizes;
  if (m.expires_at_ms) j["ex"] = m.expires_at_ms;
  if (m.page_size) j["pg"] = m.page_size;
  if (m.checked_ms) j["ck_t"] = m.checked_ms;
  if (!m.ufs_etag.empty()) j["ue"] = m.ufs_etag;
  auto v = json::to_msgpack(j);
  return std::string(v.begin(), v.end());
}

Result<ObjectMeta> decode_object(std::string_view bytes) {
  return decode_with(bytes, [](const json& j) {
    ObjectMeta m;
    m.version = j.at("v").get<uint64_t>();
    m.deleted = j.value("del", false);
    m.cached = !j.value("nc", false);
    m.size = j.at("sz").get<uint64_t>();
    m.etag = j.at("et").get<std::string>();
    m.crc32c = j.at("crc").get<uint32_t>();
    m.content_type = j.value("ct", "");
    m.headers = j.value("h", std::map<std::string, std::string>{});
    m.user_meta = j.value("um", std::map<std::string, std::string>{});
    m.checksums = j.value("ck", std::map<std::string, std::string>{});
    m.tags = j.value("tg", Tags{});
    m.mtime_ms = j.at("mt").get<int64_t>();
    m.state = static_cast<PersistState>(j.at("st").get<int>());
    m.park_reason = j.value("pr", "");
    for (auto& s : j.at("sg")) m.segments.push_back(seg_from_json(s));
    m.part_sizes = j.value("ps", std::vector<uint64_t>{});
    m.expires_at_ms = j.value("ex", int64_t{0});
    m.page_size = j.value("pg", uint64_t{0});
    m.checked_ms = j.value("ck_t", int64_t{0});
    m.ufs_etag = j.value("ue", "");
    return m;
  });
}

std::string encode(const Segment& s) {
  auto v = json::to_msgpack(segs_to_json({s})[0]);
  return std::string(v.begin(), v.end());
}

bool same_data(const std::vector<Segment>& a, const std::vector<Segment>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const Segment& x, const Segment& y) {
    return x.file_id == y.file_id && x.size == y.size && x.in_index == y.in_index && x.tier == y.tier;
  });
}

Result<Segment> decode_segment(std::string_view bytes) {
  return decode_with(bytes, [](const json& j) { return seg_from_json(j); });
}

std::string encode(const UploadMeta& m) {
  json j{{"id", m.upload_id}, {"b", m.bucket}, {"k", m.key}, {"t", m.initiated_ms}, {"ct", m.content_type},
         {"h", m.headers}, {"um", m.user_meta}, {"tg", m.tags}};
  auto v = json::to_msgpack(j);
  return std::string(v.begin(), v.end());
}

Result<UploadMeta> decode_upload(std::string_view bytes) {
  return decode_with(bytes, [](const json& j) {
    UploadMeta m;
    m.upload_id = j.at("id").get<std::string>();
    m.bucket = j.at("b").get<std::string>();
    m.key = j.at("k").get<std::string>();
    m.initiated_ms = j.at("t").get<int64_t>();
    m.content_type = j.value("ct", "");
    m.headers = j.value("h", std::map<std::string, std::string>{});
    m.user_meta = j.value("um", std::map<std::string, std::string>{});
    m.tags = j.value("tg", Tags{});
    return m;
  });
}

std::string encode(const PartMeta& m) {
  json j{{"n", m.number}, {"f", m.segment.file_id}, {"s", m.segment.size}, {"e", m.etag}, {"t", m.mtime_ms}};
  if (m.segment.in_index) j["x"] = 1;
  if (m.segment.tier) j["tr"] = m.segment.tier;
  auto v = json::to_msgpack(j);
  return std::string(v.begin(), v.end());
}

Result<PartMeta> decode_part(std::string_view bytes) {
  return decode_with(bytes, [](const json& j) {
    PartMeta m;
    m.number = j.at("n").get<int>();
    m.segment = {j.at("f").get<uint64_t>(), j.at("s").get<uint64_t>(), j.value("x", 0) == 1,
                 j.value("tr", uint8_t{0}), std::nullopt};
    m.etag = j.at("e").get<std::string>();
    m.mtime_ms = j.at("t").get<int64_t>();
    return m;
  });
}

}  // namespace reservoir::store
