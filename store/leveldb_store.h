// The LevelDB store: one LevelDB per node, with an object cache of decoded
// hot objects in front (store/object_cache.h). Key spaces, group commit and
// the cache are described in docs/design-notes.md ("Storage layout").
// The only place outside bench/ that includes LevelDB's headers is
// store/leveldb_store.cc.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "store/store.h"

namespace ringkv {

struct LevelDbOptions {
  bool sync = false;              // fsync every commit before acknowledging its writes
  size_t cache_bytes = 32 << 20;  // block cache
  size_t write_buffer_bytes = 16 << 20;
  // Decoded objects of recently used keys (store/object_cache.h); 0: none.
  size_t object_cache_bytes = 64 << 20;
};

// Opens (creating if needed) a LevelDB store in dir.
Result<std::unique_ptr<Store>> OpenLevelDbStore(const std::string& dir,
                                                const LevelDbOptions& options);

}  // namespace ringkv
