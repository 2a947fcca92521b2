// Helpers for unit tests that call simulated nodes (sim::World::Call).
#pragma once

#include <doctest/doctest.h>

#include <optional>
#include <variant>

#include "core/message.h"

namespace ringkv::test {

// The Reply in an answer; fails the test if there was no answer or it was
// another kind of message.
inline Reply AsReply(const std::optional<Envelope>& env) {
  REQUIRE(env.has_value());
  auto* r = std::get_if<Reply>(&env->body);
  REQUIRE(r != nullptr);
  return *r;
}

}  // namespace ringkv::test
