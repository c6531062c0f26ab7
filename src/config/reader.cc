#include "config/reader.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

#include "core/strings.h"

namespace gh::config {

namespace {

constexpr std::string_view kRootPath = "(root)";  // the field path of the whole document
constexpr std::string_view kDurationExpected = "a duration like 250ms, 30s, 15m or 1h";
constexpr std::string_view kSizeExpected = "a size like 8KiB, 10MiB or 1024";

std::string describe(const YAML::Node& n) { return describe_value(n); }

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

// ---- describing values in messages --------------------------------------------------------

std::string quote(std::string_view s) {
  constexpr std::size_t kMax = 80;
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size() && i < kMax; ++i) {
    char c = s[i];
    if (c == '"' || c == '\\') out += '\\', out += c;
    else if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (static_cast<unsigned char>(c) < 0x20) out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
    else out += c;
  }
  if (s.size() > kMax) out += "...";
  return out + "\"";
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string join(const std::vector<std::string>& items, std::string_view last_sep) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += (i + 1 == items.size()) ? std::string(last_sep) : std::string(", ");
    out += items[i];
  }
  return out;
}

std::string closest(std::string_view got, const std::vector<std::string>& candidates) {
  std::string best = suggest(got, candidates);
  if (!best.empty() || got.size() < 3) return best;
  for (const auto& c : candidates) {
    if (c.size() <= got.size() || c.compare(0, got.size(), got) != 0) continue;
    if (!best.empty()) return {};  // ambiguous
    best = c;
  }
  return best;
}

std::string unknown_name(std::string_view what, std::string_view got, const std::vector<std::string>& candidates) {
  std::string best = closest(got, candidates);
  if (!best.empty()) return fmt::format("unknown {} {}; did you mean {}?", what, quote(got), quote(best));
  if (candidates.empty()) return fmt::format("unknown {} {}", what, quote(got));
  return fmt::format("unknown {} {}; expected one of: {}", what, quote(got), join(candidates, ", "));
}

std::string join_path(std::string_view parent, std::string_view key) {
  if (key.empty()) key = "\"\"";  // an empty key still names a place
  if (parent.empty()) return std::string(key);
  return fmt::format("{}.{}", parent, key);
}

// ---- a value with its place -----------------------------------------------------------------

std::vector<Val> items(const Val& list) {
  std::vector<Val> out;
  std::size_t i = 0;
  for (const YAML::Node& item : list.node) {
    Mark m = mark_of(item);
    if (m.line == 0) m = list.mark;
    out.push_back(Val{item, m, fmt::format("{}[{}]", list.path, i++)});
  }
  return out;
}

std::vector<std::pair<std::string, Val>> named_entries(Diagnostics& d, const Val& map) {
  std::vector<std::pair<std::string, Val>> out;
  for (auto it = map.node.begin(); it != map.node.end(); ++it) {
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    Mark key_mark = mark_of(key);
    if (!key.IsScalar()) {
      d.error(key_mark, map.path, fmt::format("expected a name, got {}", describe(key)));
      continue;
    }
    std::string name = key.Scalar();
    std::string path = join_path(map.path, name);
    bool seen = std::any_of(out.begin(), out.end(), [&](const auto& e) { return e.first == name; });
    if (seen) {
      d.error(key_mark, path, fmt::format("duplicate name {}", quote(name)));
      continue;
    }
    Mark value_mark = mark_of(value);
    if (value.IsNull() && value_mark.line != key_mark.line) value_mark = key_mark;
    out.push_back({name, Val{value, value_mark, path}});
  }
  return out;
}

Fields::Fields(Diagnostics& d, const Val& map, const std::vector<std::string>& allowed, bool open) : map_(map) {
  for (auto it = map.node.begin(); it != map.node.end(); ++it) {
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    std::string name = key.IsScalar() ? key.Scalar() : std::string();
    Mark key_mark = mark_of(key);
    if (!key.IsScalar()) {
      d.error(key_mark, map.path.empty() ? std::string(kRootPath) : map.path,
              fmt::format("expected a key name, got {}", describe(key)));
      continue;
    }
    if (!open && std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      d.error(key_mark, join_path(map.path, name), unknown_name("key", name, allowed));
      continue;
    }
    if (find(name)) {
      d.error(key_mark, join_path(map.path, name), fmt::format("duplicate key {}", quote(name)));
      continue;
    }
    // An empty value has no place of its own (yaml-cpp puts it on the next line): use the key's.
    Mark value_mark = mark_of(value);
    if (value.IsNull() && value_mark.line != key_mark.line) value_mark = key_mark;
    entries_.push_back({name, Val{value, value_mark, join_path(map.path, name)}});
  }
}

Val Fields::get(std::string_view key) const {
  if (const Val* v = find(key)) return *v;
  return Val{YAML::Node(YAML::NodeType::Undefined), map_.mark, join_path(map_.path, key)};
}

const Val* Fields::find(std::string_view key) const {
  for (const auto& [name, v] : entries_)
    if (name == key) return &v;
  return nullptr;
}

// ---- typed readers --------------------------------------------------------------------------

std::string boolean_hint(std::string_view text) {
  // YAML 1.1's booleans (yaml-cpp still reads them so); YAML 1.2 has only true and false.
  static constexpr std::array<std::string_view, 4> kTrue = {"yes", "y", "on", "true"};
  static constexpr std::array<std::string_view, 4> kFalse = {"no", "n", "off", "false"};
  const std::string l = lower(text);
  const char* write = nullptr;
  if (std::find(kTrue.begin(), kTrue.end(), l) != kTrue.end()) write = "true";
  if (std::find(kFalse.begin(), kFalse.end(), l) != kFalse.end()) write = "false";
  if (write == nullptr) return {};
  return fmt::format("(YAML 1.2 reads {} as a string; write {})", quote(text), write);
}

void Reader::error(const Val& v, std::string message) {
  d_.error(v.mark, v.path.empty() ? std::string(kRootPath) : v.path, std::move(message));
}

void Reader::missing(const Val& v, std::string_view expected) {
  error(v, fmt::format("missing; expected {}", expected));
}

void Reader::expected(const Val& v, std::string_view what) {
  error(v, fmt::format("expected {}, got {}", what, describe(v.node)));
}

bool Reader::want_map(const Val& v, std::string_view what) {
  if (v.node.IsMap()) return true;
  expected(v, what);
  return false;
}

bool Reader::want_list(const Val& v, std::string_view what) {
  if (v.node.IsSequence()) return true;
  expected(v, what);
  return false;
}

std::optional<std::string> Reader::text(const Val& v, std::string_view what) {
  if (v.node.IsScalar()) return v.node.Scalar();
  expected(v, what);
  return std::nullopt;
}

std::optional<std::string> Reader::nonempty_text(const Val& v, std::string_view what) {
  if (v.node.IsScalar() && !v.node.Scalar().empty()) return v.node.Scalar();
  expected(v, what);
  return std::nullopt;
}

std::optional<bool> Reader::boolean(const Val& v) {
  if (v.node.IsScalar()) {
    const std::string& s = v.node.Scalar();
    if (s == "true") return true;
    if (s == "false") return false;
    if (std::string hint = boolean_hint(s); !hint.empty()) {
      error(v, fmt::format("expected true or false, got {} {}", describe(v.node), hint));
      return std::nullopt;
    }
  }
  expected(v, "true or false");
  return std::nullopt;
}

std::optional<std::uint64_t> Reader::integer(const Val& v, std::uint64_t min, std::string_view what) {
  if (v.node.IsScalar()) {
    std::string_view s = v.node.Scalar();
    std::uint64_t n = 0;
    if (all_digits(s) && s.size() <= 18) {
      std::from_chars(s.data(), s.data() + s.size(), n);
      if (n >= min) return n;
    }
  }
  expected(v, what);
  return std::nullopt;
}

std::optional<Duration> Reader::duration(const Val& v, bool allow_zero) {
  if (v.node.IsScalar()) {
    if (auto d = parse_duration(v.node.Scalar()); d && (allow_zero || d->count() > 0)) return *d;
  }
  expected(v, allow_zero ? kDurationExpected : "a positive duration like 250ms, 30s, 15m or 1h");
  return std::nullopt;
}

std::optional<std::uint64_t> Reader::size(const Val& v, bool allow_zero, std::string_view per) {
  if (v.node.IsScalar()) {
    std::string_view s = v.node.Scalar();
    if (!per.empty() && s.size() > per.size() && s.substr(s.size() - per.size()) == per) s.remove_suffix(per.size());
    if (auto n = parse_size(s); n && (allow_zero || *n > 0)) return *n;
  }
  std::string what = allow_zero ? std::string(kSizeExpected) : fmt::format("a positive {}", kSizeExpected.substr(2));
  if (!per.empty()) what = "a rate like 1KiB/s, 64KiB/s or 1024";
  expected(v, what);
  return std::nullopt;
}

std::optional<std::string> Reader::choice(const Val& v, std::string_view what,
                                          const std::vector<std::string>& choices) {
  if (v.node.IsScalar()) {
    const std::string& s = v.node.Scalar();
    if (std::find(choices.begin(), choices.end(), s) != choices.end()) return s;
    if (!closest(s, choices).empty()) {
      error(v, unknown_name(what, s, choices));
      return std::nullopt;
    }
  }
  expected(v, fmt::format("one of {}", join(choices)));
  return std::nullopt;
}

// ---- a policy entry's options ---------------------------------------------------------------

Val OptionReader::get(std::string_view key) const {
  const std::string path = e_.path + "." + std::string(key);
  if (e_.options.IsMap()) {
    if (YAML::Node n = e_.options[std::string(key)]) return Val{n, mark_of(n), path};
  }
  return Val{YAML::Node(YAML::NodeType::Undefined), e_.mark, path};
}

void OptionReader::unknown_option(const YAML::Node& key_node, const std::string& key,
                                  const std::vector<std::string>& allowed) {
  std::string hint = suggest(key, allowed);
  d_.error(key_node, e_.path + "." + key,
           "unknown option \"" + key + "\"" + (hint.empty() ? "" : "; did you mean \"" + hint + "\"?"));
}

void OptionReader::check_keys(const std::vector<std::string>& allowed) {
  if (!e_.options.IsMap()) return;
  for (const auto& kv : e_.options) {
    std::string key = kv.first.Scalar();
    if (key == "type" || std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    unknown_option(kv.first, key, allowed);
  }
}

void OptionReader::require(const std::string& key, const std::string& what) {
  if (!get(key).present()) d_.error(e_.mark, e_.path, "missing `" + key + "`: expected " + what);
}

std::optional<std::vector<std::string>> OptionReader::string_list(const std::string& key) {
  const Val v = get(key);
  if (!v.present()) return std::nullopt;
  std::vector<std::string> out;
  if (v.node.IsScalar()) {
    out.push_back(v.node.Scalar());
    return out;
  }
  if (!v.node.IsSequence()) {
    error(v, "expected a string or a list of strings");
    return std::nullopt;
  }
  for (const Val& item : items(v)) {
    if (!item.node.IsScalar()) {
      error(item, "expected a string");
      return std::nullopt;
    }
    out.push_back(item.node.Scalar());
  }
  return out;
}

std::optional<std::string> OptionReader::string_opt(const std::string& key) {
  const Val v = get(key);
  if (!v.present()) return std::nullopt;
  if (!v.node.IsScalar()) {
    error(v, "expected a string");
    return std::nullopt;
  }
  return v.node.Scalar();
}

std::optional<bool> OptionReader::bool_opt(const std::string& key) {
  const Val v = get(key);
  if (!v.present()) return std::nullopt;
  return boolean(v);
}

}  // namespace gh::config
