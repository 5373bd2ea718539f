// A journaled index: index writes made durable by a ring file of fixed size
// that is overwritten in place, in front of an index that keeps no log of its
// own (RocksDB without its write-ahead log; sync() flushes its memtable).
//
// Why: RocksDB's log grows by appending, so each fdatasync also commits the
// file's new size to the file system's journal (about two device flushes).
// Overwriting blocks that are already written needs one; this disk measures
// 0.17-0.22 ms against 0.31-0.52 ms for 10 KiB (docs/architecture.md,
// "The index journal").
//
// Every write is appended to the ring as a record, in order. A synced write
// is applied to the inner index (with its sequence number under
// kJournalSeqKey in the same atomic batch) once the ring is fdatasynced past
// it, so it is never visible before it is durable (group commit: one
// fdatasync for every write waiting, whose writes are then applied in
// order). An unsynced write is applied at once, unless writes before it are
// waiting; then it waits with them. The ring has two halves; before the
// writer enters the other half, the inner index has flushed every write made
// before the current half (started in the background when the writer entered
// it), and the header moves to the current half's first record: the ring
// holds every write the inner index may lack. At open, the inner index holds
// a prefix of the writes (up to the sequence number it stores); the ring's
// records after it are applied again, which restores every write that was
// synced.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "store/index.h"

namespace reservoir::store {

inline constexpr const char* kJournalSeqKey = "m/journal";
inline constexpr uint64_t kMinJournalBytes = 1 << 20;
// The ring's layout: two header slots of 4 KiB, then records in two halves,
// [kJournalFirstRecord, mid) and [mid, end) (for tests).
inline constexpr uint64_t kJournalFirstRecord = 8192;

struct JournalOpenInfo {
  uint64_t replayed = 0;    // records applied again to the inner index at open
  uint64_t header_gen = 0;  // generation of the header the ring was read from
};

// For tests: stands in for fdatasync(2) of the ring once it is open (0, or
// -1 with errno set).
struct JournalHooks {
  std::function<int(int fd)> fdatasync;
};

// Opens (creating and zero-filling it if needed) the ring at `path` of
// `bytes` bytes in front of `inner`, and replays it into `inner`.
Result<std::unique_ptr<KvIndex>> open_journaled_index(std::unique_ptr<KvIndex> inner, const std::string& path,
                                                      uint64_t bytes, JournalOpenInfo* info = nullptr,
                                                      JournalHooks hooks = {});

// For crash tests: records in [synced, head) of the ring are written but not
// yet fdatasynced (a power loss may lose them); the next record goes at head.
struct JournalPosition {
  uint64_t synced = 0, head = 0;
};
JournalPosition journal_position(KvIndex& journaled);
// For tests: the ring is fdatasynced up to this write's sequence number.
uint64_t journal_synced_seq(KvIndex& journaled);

}  // namespace reservoir::store
