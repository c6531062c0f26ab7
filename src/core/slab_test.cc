#include "core/slab.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <set>
#include <vector>

namespace gh::core {
namespace {

constexpr std::size_t kSize = 424;  // about an HTTP/1.1 session with its control block

std::vector<void*> take(Slab& slab, std::size_t n, std::size_t size = kSize) {
  std::vector<void*> out;
  for (std::size_t i = 0; i < n; ++i) {
    void* p = slab.allocate(size);
    std::memset(p, static_cast<int>(i), size);  // all of it is writable
    out.push_back(p);
  }
  return out;
}

TEST(Slab, BlocksAreDistinctAlignedAndKeepTheirBytes) {
  Slab slab;
  auto blocks = take(slab, 1000);
  std::set<std::uintptr_t> starts;
  for (void* p : blocks) {
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % 16, 0u);
    starts.insert(reinterpret_cast<std::uintptr_t>(p));
  }
  EXPECT_EQ(starts.size(), blocks.size());
  // No two blocks overlap: each still holds the byte it was filled with.
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    const auto* b = static_cast<const unsigned char*>(blocks[i]);
    EXPECT_EQ(b[0], static_cast<unsigned char>(i));
    EXPECT_EQ(b[kSize - 1], static_cast<unsigned char>(i));
  }
  for (void* p : blocks) slab.deallocate(p, kSize);
  EXPECT_EQ(slab.live(), 0u);
}

TEST(Slab, ChunksAreUnmappedWhenEmptyKeepingOneSpare) {
  Slab slab;
  auto blocks = take(slab, 2000);
  if (!Slab::pooled()) {  // AddressSanitizer: every block is operator new's
    EXPECT_EQ(slab.chunks(), 0u);
    for (void* p : blocks) slab.deallocate(p, kSize);
    return;
  }
  EXPECT_EQ(slab.block_size(), 432u);  // rounded up to 16 bytes
  // Dense: a chunk's header takes less than a block, so all but one block's worth is used.
  const std::size_t per_chunk = Slab::kChunkBytes / 432 - 1;
  EXPECT_EQ(slab.chunks(), (2000 + per_chunk - 1) / per_chunk);
  EXPECT_EQ(slab.live(), 2000u);
  for (void* p : blocks) slab.deallocate(p, kSize);
  EXPECT_EQ(slab.live(), 0u);
  EXPECT_EQ(slab.chunks(), 1u);  // the spare
}

TEST(Slab, FreedBlocksAreReusedBeforeNewChunksAreMapped) {
  Slab slab;
  auto blocks = take(slab, 500);
  const std::size_t chunks = slab.chunks();
  std::set<void*> freed;
  for (std::size_t i = 0; i < blocks.size(); i += 2) {
    slab.deallocate(blocks[i], kSize);
    freed.insert(blocks[i]);
  }
  auto again = take(slab, freed.size());
  if (Slab::pooled()) {
    EXPECT_EQ(slab.chunks(), chunks);
    for (void* p : again) EXPECT_TRUE(freed.count(p)) << "a block not freed before";
  }
  for (std::size_t i = 1; i < blocks.size(); i += 2) slab.deallocate(blocks[i], kSize);
  for (void* p : again) slab.deallocate(p, kSize);
  EXPECT_EQ(slab.live(), 0u);
}

TEST(Slab, OtherSizesGoToOperatorNew) {
  Slab slab;
  void* first = slab.allocate(kSize);
  void* other = slab.allocate(kSize * 2);
  std::memset(other, 1, kSize * 2);
  EXPECT_EQ(slab.live(), Slab::pooled() ? 1u : 0u);
  slab.deallocate(other, kSize * 2);
  slab.deallocate(first, kSize);
  EXPECT_EQ(slab.live(), 0u);
}

struct Session : std::enable_shared_from_this<Session> {
  explicit Session(int v) : value(v) {}
  int value;
  char rest[300] = {};
};

TEST(Slab, AllocateSharedPlacesObjectAndCountTogether) {
  Slab slab;
  std::vector<std::shared_ptr<Session>> sessions;
  for (int i = 0; i < 300; ++i) sessions.push_back(std::allocate_shared<Session>(SlabAllocator<Session>(slab), i));
  EXPECT_EQ(slab.live(), Slab::pooled() ? 300u : 0u);
  for (int i = 0; i < 300; ++i) {
    EXPECT_EQ(sessions[i]->value, i);
    EXPECT_EQ(sessions[i]->shared_from_this().get(), sessions[i].get());
  }
  std::weak_ptr<Session> watch = sessions[7];
  sessions.clear();
  EXPECT_TRUE(watch.expired());
  // The weak count kept the block until now; with it gone, every block is back.
  watch.reset();
  EXPECT_EQ(slab.live(), 0u);
}

}  // namespace
}  // namespace gh::core
