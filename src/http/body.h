// BodyPart: one piece of a message body as it moves between a downstream and an upstream,
// decoded (no transfer framing). Thread: a plain value; `data` is a view into the buffer of the
// connection that produced it, valid until that connection's next read.
#pragma once

#include <string_view>

namespace gh::http {

struct BodyPart {
  std::string_view data;
  bool last = false;  // the body ends with this piece
};

}  // namespace gh::http
