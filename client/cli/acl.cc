// acl: the users file a node loads with --acl (core/acl.h). Nothing is sent
// to a node; after a change, `kill -HUP` the nodes to reload it.
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <cstdlib>

#include <fmt/format.h>

#include "client/cli/cli.h"
#include "core/acl.h"

namespace ringkv::cli {

namespace {

struct AclOptions {
  std::string file;
  std::string name;
  std::string role;
  uint32_t iterations = kDefaultPbkdf2Iterations;
  bool force = false;
};

// The file's users; a file that does not exist yet is empty when `create`.
Result<Acl> LoadFile(const std::string& path, bool create) {
  struct stat st {};
  if (create && ::stat(path.c_str(), &st) != 0 && errno == ENOENT) return Acl();
  return Acl::Load(path);
}

int RunAdd(const GlobalOptions& g, const AclOptions& o) {
  auto role = ParseRole(o.role);
  if (!role) return Fail(g, Status::InvalidArgument("--role must be read, write or admin"));
  Status s = CheckUserName(o.name);
  if (!s.ok()) return Fail(g, s);
  auto acl = LoadFile(o.file, true);
  if (!acl.ok()) return Fail(g, acl.status());
  if (acl->Find(o.name) != nullptr && !o.force) {
    return Fail(g, Status::InvalidArgument(fmt::format(
                       "user '{}' exists in {}; pass --force to replace its password and role", o.name,
                       o.file)));
  }
  std::string password;
  if (const char* env = std::getenv("RINGKV_PASSWORD"); env != nullptr && *env != '\0') {
    password = env;
  } else {
    auto typed = PromptPassword(fmt::format("Password for {}: ", o.name), /*confirm=*/true);
    if (!typed.ok()) {
      return Fail(g, Status::InvalidArgument(fmt::format(
                         "{}; set RINGKV_PASSWORD to give it without a terminal", typed.status().message())));
    }
    password = std::move(typed).value();
  }
  auto hash = HashPassword(password, o.iterations);
  OPENSSL_cleanse(password.data(), password.size());
  if (!hash.ok()) return Fail(g, hash.status());
  s = acl->Add(AclUser{o.name, *role, std::move(hash).value()}, /*replace=*/true);
  if (s.ok()) s = acl->Save(o.file);
  if (!s.ok()) return Fail(g, s);
  if (g.json) {
    PrintJson(json{{"file", o.file}, {"user", o.name}, {"role", RoleName(*role)}});
  } else {
    fmt::print("{} user {} (role {}) in {}; nodes started with --acl {} reload it on SIGHUP\n",
               o.force ? "set" : "added", o.name, RoleName(*role), o.file, o.file);
  }
  return kExitOk;
}

int RunRemove(const GlobalOptions& g, const AclOptions& o) {
  auto acl = Acl::Load(o.file);
  if (!acl.ok()) return Fail(g, acl.status());
  if (!acl->Remove(o.name)) {
    return Fail(g, Status::InvalidArgument(fmt::format("{} has no user '{}'", o.file, o.name)));
  }
  Status s = acl->Save(o.file);
  if (!s.ok()) return Fail(g, s);
  if (g.json) {
    PrintJson(json{{"file", o.file}, {"removed", o.name}});
  } else {
    fmt::print("removed user {} from {}; nodes reload it on SIGHUP (its open connections are "
               "then closed)\n",
               o.name, o.file);
  }
  return kExitOk;
}

int RunList(const GlobalOptions& g, const AclOptions& o) {
  auto acl = Acl::Load(o.file);
  if (!acl.ok()) return Fail(g, acl.status());
  if (g.json) {
    json users = json::array();
    for (const AclUser& u : acl->users()) {
      users.push_back({{"name", u.name}, {"role", RoleName(u.role)}, {"iterations", u.hash.iterations}});
    }
    PrintJson(json{{"file", o.file}, {"users", users}});
    return kExitOk;
  }
  Table t({"USER", "ROLE", "HASH"});
  for (const AclUser& u : acl->users()) {
    t.Add({u.name, RoleName(u.role), fmt::format("pbkdf2-sha256, {} iterations", u.hash.iterations)});
  }
  t.Print();
  return kExitOk;
}

}  // namespace

void AddAclCommands(CLI::App* app, Cli* cli) {
  AclOptions* o = cli->Keep<AclOptions>();
  const GlobalOptions* g = &cli->global;
  auto* acl = app->add_subcommand(
      "acl",
      "Edit a users file for ringkv-node --acl: users with a role (read: get and the info "
      "commands; write: also put and delete; admin: also admin leave, remove and aae). "
      "Passwords are stored as salted PBKDF2-HMAC-SHA256 hashes, never in clear. Nodes "
      "reload the file on SIGHUP");
  acl->require_subcommand(1);
  cli->commands.push_back(acl);

  auto* add = acl->add_subcommand(
      "add", "Add a user (the file is created, mode 0600, if missing); the password comes from "
             "$RINGKV_PASSWORD, else it is asked twice on the terminal");
  add->add_option("FILE", o->file, "The users file")->required();
  add->add_option("NAME", o->name, "The user name (letters, digits, . _ - @)")->required();
  add->add_option("--role", o->role, "read, write or admin")
      ->required()
      ->check(CLI::IsMember({"read", "write", "admin"}));
  add->add_option("--iterations", o->iterations,
                  "PBKDF2 iterations: each login costs the node this much work")
      ->capture_default_str()
      ->check(CLI::Range(kMinPbkdf2Iterations, kMaxPbkdf2Iterations));
  add->add_flag("--force", o->force, "Replace the password and role of an existing user");
  add->callback([cli, g, o] { cli->run = [g, o] { return RunAdd(*g, *o); }; });

  auto* remove = acl->add_subcommand("remove", "Remove a user");
  remove->add_option("FILE", o->file, "The users file")->required();
  remove->add_option("NAME", o->name, "The user")->required();
  remove->callback([cli, g, o] { cli->run = [g, o] { return RunRemove(*g, *o); }; });

  auto* list = acl->add_subcommand("list", "The users and their roles (never the hashes)");
  list->add_option("FILE", o->file, "The users file")->required();
  list->callback([cli, g, o] { cli->run = [g, o] { return RunList(*g, *o); }; });
  for (CLI::App* c : {add, remove, list}) cli->commands.push_back(c);
}

}  // namespace ringkv::cli
