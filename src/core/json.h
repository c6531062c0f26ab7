// JSON text output shared by the access log, the error log and the token minter.
// Thread: pure functions.
#pragma once

#include <string>
#include <string_view>

namespace gh {

// Appends S to OUT as a JSON string literal, quotes included. Valid UTF-8 passes through as is;
// each byte that is not part of a valid UTF-8 sequence becomes U+FFFD; `"`, `\` and control
// characters (below 0x20, and 0x7f) are escaped. The result is always valid UTF-8 JSON.
void append_json_string(std::string& out, std::string_view s);

// The length of the valid UTF-8 sequence at the front of S (1 to 4), or 0 when S does not start
// with one (a stray continuation byte, an overlong form, a surrogate, above U+10FFFF, truncated).
std::size_t utf8_sequence_length(std::string_view s) noexcept;

}  // namespace gh
