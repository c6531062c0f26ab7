// The config dialect: typed readers, field checks and did-you-mean suggestions shared by the
// loader and every policy's parser, so that one value reads the same wherever it is written
// (`yes` is refused as a boolean everywhere, a duration is a duration everywhere).
// Thread: pure functions and short-lived readers over parsed YAML; a Reader writes to the
// Diagnostics it was given and is used by one thread.
// Failure: a value that does not fit adds one diagnostic at its field path and the reader
// returns nullopt (or false); nothing throws for bad input.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"

namespace gh::config {

// ---- describing values in messages ---------------------------------------------------------

// `s` in double quotes, escaped, cut after 80 characters.
std::string quote(std::string_view s);
// "a, b or c" (or with another last separator).
std::string join(const std::vector<std::string>& items, std::string_view last_sep = " or ");
// The candidate `got` most likely meant: a near miss, or the one name that `got` abbreviates
// (`max_body` for `max_body_bytes`). Empty when nothing is close.
std::string closest(std::string_view got, const std::vector<std::string>& candidates);
// `unknown WHAT "x"; did you mean "y"?`, or the list of choices when nothing is close.
std::string unknown_name(std::string_view what, std::string_view got, const std::vector<std::string>& candidates);
bool all_digits(std::string_view s);
// "parent.key" (an empty key reads `""`).
std::string join_path(std::string_view parent, std::string_view key);

// ---- a value with its place -----------------------------------------------------------------

// A node with where it stands and its field path. `node` is undefined when the key is absent;
// then `mark` is the enclosing mapping's.
struct Val {
  YAML::Node node;
  Mark mark;
  std::string path;

  bool present() const { return node.IsDefined(); }
  bool is_null() const { return !node.IsDefined() || node.IsNull(); }
};

// The items of a list, each with its path `list[i]`.
std::vector<Val> items(const Val& list);
// Every entry of a mapping whose keys are user-chosen names (services, policies, headers);
// a duplicate or a key that is not a name is reported and skipped.
std::vector<std::pair<std::string, Val>> named_entries(Diagnostics& d, const Val& map);

// The keys of one mapping, checked against the keys it may have.
class Fields {
 public:
  // An `open` mapping takes any key: only its duplicates are reported (a policy's own
  // validator judges the rest of its keys).
  Fields(Diagnostics& d, const Val& map, const std::vector<std::string>& allowed, bool open = false);

  // The value under `key`, or an absent Val placed at the mapping.
  Val get(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }

 private:
  const Val* find(std::string_view key) const;

  Val map_;
  std::vector<std::pair<std::string, Val>> entries_;
};

// ---- typed readers --------------------------------------------------------------------------

// What `expected true or false` adds for a word YAML 1.1 read as a boolean (yes, on, Y, True,
// ...): `(YAML 1.2 reads "yes" as a string; write true)`. Empty for any other text.
std::string boolean_hint(std::string_view text);

// Each reader reports at the value's place and returns nullopt (or false) when it does not fit.
class Reader {
 public:
  explicit Reader(Diagnostics& d) : d_(d) {}

  void error(const Val& v, std::string message);
  // `missing; expected WHAT`.
  void missing(const Val& v, std::string_view expected);
  // `expected WHAT, got VALUE`.
  void expected(const Val& v, std::string_view what);

  bool want_map(const Val& v, std::string_view what);
  bool want_list(const Val& v, std::string_view what);
  std::optional<std::string> text(const Val& v, std::string_view what);
  std::optional<std::string> nonempty_text(const Val& v, std::string_view what);
  // Only `true` and `false` (YAML 1.2); `yes`, `on`, `True`... are refused with a suggestion.
  std::optional<bool> boolean(const Val& v);
  std::optional<std::uint64_t> integer(const Val& v, std::uint64_t min, std::string_view what);
  std::optional<std::uint64_t> positive(const Val& v) { return integer(v, 1, "a positive integer"); }
  std::optional<Duration> duration(const Val& v, bool allow_zero = false);
  // A size like 8KiB; with `per` ("/s") a rate whose unit suffix is dropped.
  std::optional<std::uint64_t> size(const Val& v, bool allow_zero = false, std::string_view per = "");
  // One of a fixed set of words; a near miss gets a suggestion.
  std::optional<std::string> choice(const Val& v, std::string_view what, const std::vector<std::string>& choices);


 protected:
  Diagnostics& d_;
};

// The readers over one policy entry's options (`policies.NAME.KEY` paths).
class OptionReader : public Reader {
 public:
  OptionReader(const PolicyConfig& entry, Diagnostics& d) : Reader(d), e_(entry) {}

  // The value under `key`, placed where it is written; absent: placed at the entry.
  Val get(std::string_view key) const;
  // `unknown option "x"; did you mean "y"?` at the key `key_node`.
  void unknown_option(const YAML::Node& key_node, const std::string& key, const std::vector<std::string>& allowed);
  // Reports every key of the entry that is not `type` or in `allowed`.
  void check_keys(const std::vector<std::string>& allowed);
  // Reports a missing required option: `missing \`KEY\`: expected WHAT` at the entry.
  void require(const std::string& key, const std::string& what);

  // Absent: nullopt with no diagnostic. Present and wrong: nullopt and a diagnostic.
  // A string, or a list of strings.
  std::optional<std::vector<std::string>> string_list(const std::string& key);
  std::optional<std::string> string_opt(const std::string& key);
  std::optional<bool> bool_opt(const std::string& key);

  const PolicyConfig& entry() const { return e_; }

 private:
  const PolicyConfig& e_;
};

}  // namespace gh::config
