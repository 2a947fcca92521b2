// libFuzzer target: the ACL file parser (core/acl.h). A node reads the file
// at start and on every SIGHUP; a bad one must be refused with a message,
// never crash, and one that parses must serialize and parse back the same.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/acl.h"

using namespace ringkv;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto hash = ParsePasswordHash(text);
  if (hash.ok() && ParsePasswordHash(FormatPasswordHash(*hash)).value().key != hash->key) {
    __builtin_trap();
  }
  auto acl = Acl::Parse(text);
  if (!acl.ok()) {
    if (acl.status().message().empty()) __builtin_trap();
    return 0;
  }
  std::string again = acl->Serialize();
  auto back = Acl::Parse(again);
  if (!back.ok() || back->Serialize() != again || back->users().size() != acl->users().size()) {
    __builtin_trap();
  }
  return 0;
}
