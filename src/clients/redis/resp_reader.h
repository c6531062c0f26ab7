// Reply and ReplyReader: RESP (the Redis protocol) bytes in, owned replies out. hiredis' reader
// parses; its object hooks build each Reply in place, with no intermediate redisReply.
// Thread: a ReplyReader is used by one thread at a time (a connection's loop).
// Failure: bytes that are not RESP, nesting deeper than hiredis allows, or an array announcing
// more than kMaxArrayElements make next() return an Error; the reader must then be reset().
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/result.h"

struct redisReader;

namespace gh::clients::redis {

// One RESP reply, owned.
struct Reply {
  enum class Type { Nil, Status, Error, Integer, String, Array };
  Type type = Type::Nil;
  std::string str;            // Status, Error, String
  long long integer = 0;      // Integer
  std::vector<Reply> elements;  // Array

  bool is_error() const noexcept { return type == Type::Error; }
};

class ReplyReader {
 public:
  // The most elements an array reply may announce. The gateway's replies have a handful; a
  // server announcing more is broken (or not Redis), and its reply fails at once. (Memory
  // grows with the bytes received either way, not with what a header announces.)
  static constexpr int kMaxArrayElements = 1 << 16;

  ReplyReader();
  ~ReplyReader();
  ReplyReader(const ReplyReader&) = delete;
  ReplyReader& operator=(const ReplyReader&) = delete;

  // Appends bytes read from the server.
  void feed(const char* data, std::size_t n);
  // The next complete reply; std::nullopt until more bytes come; Error when they are not RESP.
  Result<std::optional<Reply>> next();
  // Forgets everything fed so far (after a reconnect).
  void reset();

 private:
  Reply building_;  // the reply being read: the reader's objects live here
  redisReader* reader_ = nullptr;
  bool broken_ = false;  // feed() failed: next() reports it
};

}  // namespace gh::clients::redis
