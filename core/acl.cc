#include "core/acl.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <iterator>

#include <fmt/format.h>

#include "core/codec.h"

namespace ringkv {

namespace {

constexpr std::string_view kScheme = "pbkdf2-sha256";
constexpr size_t kSaltBytes = 16;
constexpr size_t kKeyBytes = 32;
// A file bigger than this is not an ACL (and is not read into memory).
constexpr size_t kMaxFileBytes = 16 * 1024 * 1024;

bool NameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-' || c == '@';
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r'; }

// Splits a line into whitespace-separated fields.
std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && IsSpace(line[i])) ++i;
    size_t start = i;
    while (i < line.size() && !IsSpace(line[i])) ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

bool Derive(std::string_view password, const std::string& salt, uint32_t iterations,
            unsigned char* out) {
  return PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                           reinterpret_cast<const unsigned char*>(salt.data()),
                           static_cast<int>(salt.size()), static_cast<int>(iterations),
                           EVP_sha256(), static_cast<int>(kKeyBytes), out) == 1;
}

}  // namespace

const char* RoleName(Role role) {
  switch (role) {
    case Role::kRead: return "read";
    case Role::kWrite: return "write";
    case Role::kAdmin: return "admin";
  }
  return "unknown";
}

std::optional<Role> ParseRole(std::string_view name) {
  if (name == "read") return Role::kRead;
  if (name == "write") return Role::kWrite;
  if (name == "admin") return Role::kAdmin;
  return std::nullopt;
}

Status CheckUserName(std::string_view name) {
  if (name.empty()) return Status::InvalidArgument("user name is empty");
  if (name.size() > kMaxUserNameBytes) {
    return Status::InvalidArgument(
        fmt::format("user name is {} bytes; the limit is {}", name.size(), kMaxUserNameBytes));
  }
  if (!std::all_of(name.begin(), name.end(), NameChar)) {
    return Status::InvalidArgument(
        "a user name is letters, digits, '.', '_', '-' and '@' only");
  }
  return Status::OK();
}

Status CheckPassword(std::string_view password) {
  if (password.empty()) return Status::InvalidArgument("the password is empty");
  if (password.size() > kMaxPasswordBytes) {
    return Status::InvalidArgument(
        fmt::format("the password is {} bytes; the limit is {}", password.size(), kMaxPasswordBytes));
  }
  return Status::OK();
}

std::string FormatPasswordHash(const PasswordHash& hash) {
  return fmt::format("{}${}${}${}", kScheme, hash.iterations, Base64Encode(hash.salt),
                     Base64Encode(hash.key));
}

Result<PasswordHash> ParsePasswordHash(std::string_view text) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i == text.size() || text[i] == '$') {
      parts.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  if (parts.size() != 4 || parts[0] != kScheme) {
    return Status::InvalidArgument(
        fmt::format("the password hash is not {}$ITERATIONS$SALT$HASH", kScheme));
  }
  PasswordHash out;
  auto [ptr, ec] = std::from_chars(parts[1].data(), parts[1].data() + parts[1].size(), out.iterations);
  if (ec != std::errc() || ptr != parts[1].data() + parts[1].size() ||
      out.iterations < kMinPbkdf2Iterations || out.iterations > kMaxPbkdf2Iterations) {
    return Status::InvalidArgument(fmt::format("the iteration count must be {}..{}",
                                               kMinPbkdf2Iterations, kMaxPbkdf2Iterations));
  }
  auto salt = Base64Decode(parts[2]);
  if (!salt.ok() || salt->size() < 8 || salt->size() > 64) {
    return Status::InvalidArgument("the salt is not 8-64 bytes of base64");
  }
  auto key = Base64Decode(parts[3]);
  if (!key.ok() || key->size() != kKeyBytes) {
    return Status::InvalidArgument(fmt::format("the hash is not {} bytes of base64", kKeyBytes));
  }
  out.salt = std::move(salt).value();
  out.key = std::move(key).value();
  return out;
}

Result<PasswordHash> HashPassword(std::string_view password, uint32_t iterations) {
  Status s = CheckPassword(password);
  if (!s.ok()) return s;
  if (iterations < kMinPbkdf2Iterations || iterations > kMaxPbkdf2Iterations) {
    return Status::InvalidArgument(fmt::format("the iteration count must be {}..{}",
                                               kMinPbkdf2Iterations, kMaxPbkdf2Iterations));
  }
  PasswordHash out;
  out.iterations = iterations;
  out.salt.resize(kSaltBytes);
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.salt.data()), kSaltBytes) != 1) {
    return Status::Internal("no random bytes for the salt (OpenSSL RAND_bytes failed)");
  }
  out.key.resize(kKeyBytes);
  if (!Derive(password, out.salt, iterations, reinterpret_cast<unsigned char*>(out.key.data()))) {
    return Status::Internal("PBKDF2 failed");
  }
  return out;
}

bool VerifyPassword(std::string_view password, const PasswordHash& hash) {
  unsigned char derived[kKeyBytes];
  // Oversized passwords are refused, but only after the same work.
  bool usable = password.size() <= kMaxPasswordBytes && hash.key.size() == kKeyBytes;
  if (!Derive(password.substr(0, kMaxPasswordBytes), hash.salt, hash.iterations, derived)) {
    return false;
  }
  bool same = hash.key.size() == kKeyBytes && CRYPTO_memcmp(derived, hash.key.data(), kKeyBytes) == 0;
  OPENSSL_cleanse(derived, sizeof(derived));
  return usable && same;
}

Result<Acl> Acl::Parse(std::string_view text) {
  Acl acl;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? text.npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++line_no;
    std::vector<std::string_view> f = Fields(line);
    if (f.empty() || f[0].front() == '#') continue;
    auto bad = [&](const std::string& why) {
      return Status::InvalidArgument(fmt::format("line {}: {}", line_no, why));
    };
    if (f.size() != 3) return bad("expected NAME ROLE HASH (3 fields)");
    if (Status s = CheckUserName(f[0]); !s.ok()) return bad(s.message());
    auto role = ParseRole(f[1]);
    if (!role) return bad("the role must be read, write or admin");
    auto hash = ParsePasswordHash(f[2]);
    if (!hash.ok()) return bad(hash.status().message());
    AclUser user{std::string(f[0]), *role, std::move(hash).value()};
    if (acl.Find(user.name) != nullptr) return bad(fmt::format("user '{}' appears twice", user.name));
    Status s = acl.Add(std::move(user), false);
    if (!s.ok()) return bad(s.message());
  }
  return acl;
}

Result<Acl> Acl::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError(fmt::format("cannot read {}: {}", path, std::strerror(errno)));
  std::string text;
  char buf[64 * 1024];
  while (in.read(buf, sizeof(buf)) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxFileBytes) {
      return Status::InvalidArgument(fmt::format("{} is over {} bytes: not an ACL file", path,
                                                 kMaxFileBytes));
    }
  }
  if (in.bad()) return Status::IOError(fmt::format("cannot read {}: {}", path, std::strerror(errno)));
  auto acl = Parse(text);
  if (!acl.ok()) return Status::InvalidArgument(fmt::format("{}: {}", path, acl.status().message()));
  return acl;
}

std::string Acl::Serialize() const {
  std::string out =
      "# ringkv users (ringkv acl add|remove|list). One per line: NAME ROLE HASH.\n"
      "# ROLE: read | write | admin. HASH: pbkdf2-sha256$ITERATIONS$SALT$KEY (base64);\n"
      "# passwords are not stored.\n";
  for (const AclUser& u : users_) {
    out += fmt::format("{} {} {}\n", u.name, RoleName(u.role), FormatPasswordHash(u.hash));
  }
  return out;
}

Status Acl::Save(const std::string& path) const {
  std::string tmp = path + ".tmp";
  // Created 0600 from the start: the hashes are never readable by others,
  // not even for a moment.
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IOError(fmt::format("cannot write {}: {}", tmp, std::strerror(errno)));
  fchmod(fd, 0600);  // an old temporary file keeps its mode through O_CREAT
  std::string text = Serialize();
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::string why = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      return Status::IOError(fmt::format("cannot write {}: {}", tmp, why));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return Status::IOError(fmt::format("cannot write {}: {}", tmp, std::strerror(errno)));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    return Status::IOError(fmt::format("cannot replace {}: {}", path, why));
  }
  return Status::OK();
}

const AclUser* Acl::Find(std::string_view name) const {
  auto it = std::lower_bound(users_.begin(), users_.end(), name,
                             [](const AclUser& u, std::string_view n) { return u.name < n; });
  return it != users_.end() && it->name == name ? &*it : nullptr;
}

Status Acl::Add(AclUser user, bool replace) {
  Status s = CheckUserName(user.name);
  if (!s.ok()) return s;
  auto it = std::lower_bound(users_.begin(), users_.end(), user.name,
                             [](const AclUser& u, const std::string& n) { return u.name < n; });
  if (it != users_.end() && it->name == user.name) {
    if (!replace) {
      return Status::InvalidArgument(fmt::format("user '{}' exists already", user.name));
    }
    *it = std::move(user);
    return Status::OK();
  }
  users_.insert(it, std::move(user));
  return Status::OK();
}

bool Acl::Remove(std::string_view name) {
  auto it = std::lower_bound(users_.begin(), users_.end(), name,
                             [](const AclUser& u, std::string_view n) { return u.name < n; });
  if (it == users_.end() || it->name != name) return false;
  users_.erase(it);
  return true;
}

}  // namespace ringkv
