// Users and roles: the ACL file a node loads with --acl and `ringkv acl`
// edits.
//
// The file is text, one user per line; blank lines and lines starting with
// '#' are ignored:
//
//   # NAME  ROLE   PASSWORD HASH
//   alice   admin  pbkdf2-sha256$100000$<salt>$<hash>
//   bob     read   pbkdf2-sha256$100000$<salt>$<hash>
//
// NAME is 1-64 letters, digits, '.', '_', '-' or '@'. ROLE is read, write or
// admin; each includes the ones before it (server/access.h says what each
// may do). The hash is PBKDF2-HMAC-SHA256 of the password with a random
// 16-byte salt, its iteration count, and the 32-byte result, salt and result
// in base64. A password is never stored, so a leaked file gives an attacker
// one slow guess per iteration count per user, not the passwords.
//
// Verifying a password costs its iterations (100000: about 30 ms of one
// core), on purpose; a node runs it off its event loop (server/runtime.cc).
// Comparisons are constant-time (CRYPTO_memcmp).
//
// Everything here is a plain value; Load/Save are the only I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace ringkv {

enum class Role : uint8_t { kRead = 1, kWrite = 2, kAdmin = 3 };

// "read", "write", "admin".
const char* RoleName(Role role);
std::optional<Role> ParseRole(std::string_view name);
// True iff a user with role `have` may do what needs `need` (admin includes
// write, write includes read).
inline bool RoleAllows(Role have, Role need) { return have >= need; }

inline constexpr uint32_t kDefaultPbkdf2Iterations = 100000;
// Iteration counts outside this range are refused when a file is read (a
// huge count would make every login stall a thread for minutes).
inline constexpr uint32_t kMinPbkdf2Iterations = 1000;
inline constexpr uint32_t kMaxPbkdf2Iterations = 10000000;
inline constexpr size_t kMaxPasswordBytes = 1024;
inline constexpr size_t kMaxUserNameBytes = 64;

struct PasswordHash {
  uint32_t iterations = 0;
  std::string salt;  // raw bytes
  std::string key;   // raw bytes, 32
};

// "pbkdf2-sha256$ITERATIONS$SALT$HASH".
std::string FormatPasswordHash(const PasswordHash& hash);
Result<PasswordHash> ParsePasswordHash(std::string_view text);
// A new hash of `password` with a fresh random salt.
Result<PasswordHash> HashPassword(std::string_view password,
                                  uint32_t iterations = kDefaultPbkdf2Iterations);
// True iff `password` is the one `hash` was made from. Runs the full
// derivation whatever the input (so the time says nothing about it) and
// compares in constant time.
bool VerifyPassword(std::string_view password, const PasswordHash& hash);

// InvalidArgument naming the rule a user name breaks.
Status CheckUserName(std::string_view name);
// InvalidArgument for an empty or oversized password.
Status CheckPassword(std::string_view password);

struct AclUser {
  std::string name;
  Role role = Role::kRead;
  PasswordHash hash;
};

class Acl {
 public:
  // Parses a file's text; an error names the line and what is wrong with it
  // (never a hash or a password). Duplicate names are an error.
  static Result<Acl> Parse(std::string_view text);
  // Reads and parses a file.
  static Result<Acl> Load(const std::string& path);

  // The file's text: a header comment, then one line per user, by name.
  std::string Serialize() const;
  // Writes the file atomically (a temporary file renamed over it), created
  // with mode 0600: it holds password hashes.
  Status Save(const std::string& path) const;

  const AclUser* Find(std::string_view name) const;
  // Adds a user; an existing user of that name is an error unless replace.
  Status Add(AclUser user, bool replace);
  // False if there was no such user.
  bool Remove(std::string_view name);
  const std::vector<AclUser>& users() const { return users_; }
  bool empty() const { return users_.empty(); }

 private:
  std::vector<AclUser> users_;  // sorted by name
};

}  // namespace ringkv
