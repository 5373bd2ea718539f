#include "common/guarded.h"

#include <gtest/gtest.h>

#include <new>
#include <stdexcept>

namespace reservoir {
namespace {

TEST(guarded_test, a_round_that_throws_is_caught_and_reported) {
  int rounds = 0;
  EXPECT_TRUE(guarded("test", [&] { ++rounds; }));
  EXPECT_FALSE(guarded("test", [&] {
    ++rounds;
    throw std::runtime_error("boom");
  }));
  EXPECT_FALSE(guarded("test", [] { throw std::bad_alloc(); }));
  EXPECT_FALSE(guarded("test", [] { throw 42; }));  // not even a std::exception
  EXPECT_EQ(rounds, 2);
}

}  // namespace
}  // namespace reservoir
