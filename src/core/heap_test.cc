// core/heap.h's C allocator functions over operator new: what nghttp2 relies on.
#include "core/heap.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <limits>

namespace gh::core {
namespace {

TEST(Heap, CallocZeroesAndRefusesAnOverflowingSize) {
  auto* p = static_cast<unsigned char*>(heap_calloc(100, 3));
  ASSERT_NE(p, nullptr);
  for (int i = 0; i < 300; ++i) ASSERT_EQ(p[i], 0) << i;
  heap_free(p);
  EXPECT_EQ(heap_calloc(std::numeric_limits<std::size_t>::max() / 2, 3), nullptr);
}

TEST(Heap, ReallocKeepsTheBytesWhenGrowingAndShrinking) {
  auto* p = static_cast<char*>(heap_malloc(24));
  ASSERT_NE(p, nullptr);
  std::memcpy(p, "twenty-four bytes here!", 24);
  p = static_cast<char*>(heap_realloc(p, 20000));  // beyond any cached size class
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(std::memcmp(p, "twenty-four bytes here!", 24), 0);
  p[19999] = 'z';
  p = static_cast<char*>(heap_realloc(p, 8));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(std::memcmp(p, "twenty-f", 8), 0);
  heap_free(p);
}

TEST(Heap, NullAndZeroFollowMalloc) {
  void* p = heap_realloc(nullptr, 16);  // realloc(nullptr, n) is malloc(n)
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(heap_realloc(p, 0), nullptr);  // realloc(p, 0) frees p
  heap_free(nullptr);
  void* z = heap_malloc(0);  // a unique pointer, as operator new gives
  EXPECT_NE(z, nullptr);
  heap_free(z);
}

}  // namespace
}  // namespace gh::core
