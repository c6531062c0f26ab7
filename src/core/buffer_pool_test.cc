#include "core/buffer_pool.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string_view>
#include <vector>

namespace gh {
namespace {

TEST(BufferPool, SmallAndLargeBuffersAreRecycledWithinTheirClass) {
  BufferPool pool;
  IoBuffer small = pool.get(100);
  IoBuffer large = pool.get(BufferPool::kLarge);
  ASSERT_EQ(small.cap, BufferPool::kSmall);
  ASSERT_EQ(large.cap, BufferPool::kLarge);
  char* small_at = small.data.get();
  char* large_at = large.data.get();
  pool.put(std::move(small));
  pool.put(std::move(large));
  EXPECT_FALSE(small.data);
  EXPECT_EQ(pool.free_bytes(), BufferPool::kSmall + BufferPool::kLarge);
  // Each size comes back from its own list, never the other's.
  EXPECT_EQ(pool.get(BufferPool::kLarge).data.get(), large_at);
  EXPECT_EQ(pool.get(1).data.get(), small_at);
  EXPECT_EQ(pool.free_bytes(), 0u);
}

TEST(BufferPool, OddSizesAreRoundedToPagesAndNotKept) {
  BufferPool pool;
  IoBuffer odd = pool.get(BufferPool::kSmall + 1);
  EXPECT_EQ(odd.cap, BufferPool::kSmall + 4096);
  odd.data[odd.cap - 1] = 'x';  // all of it is writable
  pool.put(std::move(odd));
  EXPECT_EQ(pool.free_bytes(), 0u);
}

TEST(BufferPool, EnlargeKeepsTheUnreadBytesAtTheStart) {
  BufferPool pool;
  IoBuffer b = pool.get(1);
  std::memcpy(b.data.get(), "headBODY-REST", 13);
  std::size_t end = pool.enlarge(b, 4, 13);
  ASSERT_EQ(b.cap, BufferPool::kLarge);
  EXPECT_EQ(std::string_view(b.data.get(), end), "BODY-REST");
  // The small buffer went back to the pool for the next head.
  EXPECT_EQ(pool.free_bytes(), BufferPool::kSmall);
  EXPECT_EQ(pool.enlarge(b, 0, 0), 0u);  // nothing to keep
  EXPECT_EQ(b.cap, BufferPool::kLarge);
}

TEST(BufferPool, FreeMemoryIsBoundedInBytesAndTrimmedWhenUnused) {
  BufferPool pool;
  std::vector<IoBuffer> held;
  for (int i = 0; i < 400; ++i) held.push_back(pool.get(BufferPool::kLarge));  // 25 MiB
  for (IoBuffer& b : held) pool.put(std::move(b));
  EXPECT_EQ(pool.free_bytes(), 16u * 1024 * 1024);  // the rest went back at once
  pool.trim();  // they were all put back since the last trim: in use, kept
  EXPECT_EQ(pool.free_bytes(), 16u * 1024 * 1024);
  pool.trim();  // none drawn on since: down to the kept share
  EXPECT_EQ(pool.free_bytes(), 1024u * 1024);
  // Drawing on the kept share keeps it.
  IoBuffer again = pool.get(BufferPool::kLarge);
  pool.put(std::move(again));
  pool.trim();
  EXPECT_EQ(pool.free_bytes(), 1024u * 1024);
}

}  // namespace
}  // namespace gh
