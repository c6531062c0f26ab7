// libFuzzer target for ReplyReader (src/clients/redis/resp_reader.h): what a Redis server,
// or anything answering on its port, sends. Feeds the bytes whole and split at a point the
// input chooses, and checks that both readings agree reply by reply, that an error stays an
// error, and that no array exceeds the reader's cap. ASan and UBSan watch the rest.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "fuzz_check.h"
#include "clients/redis/resp_reader.h"

namespace {

using gh::clients::redis::Reply;
using gh::clients::redis::ReplyReader;

// A canonical text of a reply, to compare two readings.
void describe(const Reply& r, std::string& out) {
  out += std::to_string(static_cast<int>(r.type));
  out += ':';
  switch (r.type) {
    case Reply::Type::Integer: out += std::to_string(r.integer); break;
    case Reply::Type::Array:
      FUZZ_CHECK(r.elements.size() <= static_cast<std::size_t>(ReplyReader::kMaxArrayElements));
      out += '[';
      for (const Reply& e : r.elements) describe(e, out);
      out += ']';
      break;
    case Reply::Type::Nil: break;
    default: out += std::to_string(r.str.size()) + '/' + r.str; break;
  }
  out += ';';
}

// Reads everything available; the replies' text, then "E" when the bytes went bad.
std::string drain(ReplyReader& reader) {
  std::string out;
  for (int i = 0; i < 10'000; ++i) {
    auto next = reader.next();
    if (!next) {
      FUZZ_CHECK(!reader.next());  // an error is not forgotten
      return out + "E";
    }
    if (!*next) return out;
    describe(**next, out);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const char* bytes = reinterpret_cast<const char*>(data);
  ReplyReader whole;
  whole.feed(bytes, size);
  const std::string a = drain(whole);

  const std::size_t cut = size ? data[0] % (size + 1) : 0;
  ReplyReader split;
  split.feed(bytes, cut);
  std::string b = drain(split);
  if (b.empty() || b.back() != 'E') {
    split.feed(bytes + cut, size - cut);
    b += drain(split);
  }
  FUZZ_CHECK(a == b);

  // After reset() the reader starts afresh.
  split.reset();
  split.feed(bytes, size);
  FUZZ_CHECK(drain(split) == a);
  return 0;
}
