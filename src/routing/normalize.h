// Path normalization: the one canonical form of a request path that routing matches against (SPEC §2).
// Thread: pure function.
// Failure: returns false for a path that cannot be normalized safely; the caller answers 400.
#pragma once

#include <string>
#include <string_view>

namespace gh::routing {

// Normalizes a request path (no query) per SPEC §2:
// - percent-decodes unreserved characters (ALPHA DIGIT - . _ ~); other escapes are kept, with their
//   hex digits upper-cased ("%3a" -> "%3A"); raw bytes >= 0x80 are kept as they came;
// - resolves "." and ".." segments, also when they are reached through decoding ("%2e%2e");
// - merges repeated slashes; a trailing slash is kept, and a path ending in "." or ".." ends in "/".
// Returns false (reject with 400) for: a path that does not start with "/", an invalid
// percent-encoding ("%zz", "%4"), an encoded "/" (%2F), "\" (%5C) or NUL (%00), a raw backslash or
// control byte (0x00-0x1F, 0x7F), or a ".." above the root.
// `out` receives the normalized path (always starting with "/"); it is cleared first and its
// capacity is reused, so a caller that keeps one string per connection allocates nothing.
bool normalize_path(std::string_view path, std::string& out);

}  // namespace gh::routing
