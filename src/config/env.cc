#include "config/env.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>

namespace gh::config {

namespace {

std::vector<std::size_t> line_starts(std::string_view text) {
  std::vector<std::size_t> starts{0};
  for (std::size_t i = 0; i < text.size(); ++i)
    if (text[i] == '\n') starts.push_back(i + 1);
  return starts;
}

Mark mark_at(const std::vector<std::size_t>& starts, std::size_t offset) {
  auto it = std::upper_bound(starts.begin(), starts.end(), offset);
  std::size_t line = static_cast<std::size_t>(it - starts.begin());  // 1-based
  return Mark{static_cast<int>(line), static_cast<int>(offset - starts[line - 1] + 1)};
}

bool is_name_start(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }

bool valid_name(std::string_view s) {
  if (s.empty() || !is_name_start(s[0])) return false;
  return std::all_of(s.begin(), s.end(), is_name_char);
}

enum class Quote { None, Single, Double };

// A value dropped into a quoted scalar is escaped so that it stays one literal string.
std::string escape_for(Quote q, std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (q == Quote::Double) {
      if (c == '"' || c == '\\') out += '\\', out += c;
      else if (c == '\n') out += "\\n";
      else if (c == '\r') out += "\\r";
      else if (c == '\t') out += "\\t";
      else out += c;
    } else if (q == Quote::Single && c == '\'') {
      out += "''";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

// What stands in the n-th erroneous reference when locating fields: a plain word, so that it
// is one scalar in any YAML context (plain, quoted, key or value) and changes no structure.
std::string placeholder(std::size_t n) { return fmt::format("gatehouse_unset_{}_6f1d", n); }

struct EnvSubstituter {
  std::string_view in;
  const EnvLookup& lookup;
  bool placeholders = false;  // erroneous references become placeholder(n) instead of nothing
  SubstitutedText result{};
  std::vector<std::pair<std::size_t, std::string>> error_offsets{};

  const char* get(const std::string& name) const {
    if (lookup) return lookup(name);
    return std::getenv(name.c_str());
  }

  void fail(std::size_t at, std::string message) {
    error_offsets.emplace_back(at, std::move(message));
    result.error_offsets.push_back(result.text.size());
  }

  void replace(std::size_t orig_begin, std::size_t orig_end, std::string_view value) {
    auto& segs = result.positions.segments_;
    segs.push_back({result.text.size(), orig_begin, true});
    result.text += value;
    segs.push_back({result.text.size(), orig_end, false});
  }

  // Handles the reference starting at in[i] == '$', in[i+1] == '{'. Returns the offset after it.
  std::size_t reference(std::size_t i, Quote quote) {
    std::size_t end = i + 2;
    while (end < in.size() && is_name_char(in[end])) ++end;
    std::string name(in.substr(i + 2, end - i - 2));
    bool has_default = in.substr(end, 2) == ":-";
    std::size_t close = end;
    if (has_default)
      while (close < in.size() && in[close] != '}' && in[close] != '\n') ++close;
    if (!valid_name(name) || close >= in.size() || in[close] != '}') {
      // Drop only what was read as the reference, so the rest of the line still parses.
      fail(i, "malformed variable reference; expected ${NAME} or ${NAME:-default}");
      replace(i, end, placeholders ? placeholder(error_offsets.size() - 1) : "");
      return end;
    }
    const char* value = get(name);
    if (has_default) {
      std::string_view fallback = in.substr(end + 2, close - end - 2);
      replace(i, close + 1, escape_for(quote, (value && *value) ? std::string_view(value) : fallback));
    } else if (value) {
      replace(i, close + 1, escape_for(quote, value));
    } else {
      // A reference that is a whole plain scalar becomes "" rather than nothing, so that the
      // value keeps its place (an empty plain scalar would be null, placed at the next token).
      constexpr std::string_view kBefore = " \t[{,:-?", kAfter = " \t\r\n,]}";
      bool whole = quote == Quote::None && (i == 0 || kBefore.find(in[i - 1]) != std::string_view::npos) &&
                   (close + 1 == in.size() || kAfter.find(in[close + 1]) != std::string_view::npos);
      fail(i, fmt::format("environment variable {0} is not set; set it, or write ${{{0}:-default}} to give a default",
                         name));
      replace(i, close + 1, placeholders ? placeholder(error_offsets.size() - 1) : whole ? "\"\"" : "");
    }
    return close + 1;
  }

  void run() {
    result.positions.segments_.push_back({0, 0, false});
    Quote quote = Quote::None;
    bool comment = false;
    char last = 0;  // last non-blank character of this line outside quotes; 0 at line start
    std::size_t i = 0;
    while (i < in.size()) {
      char c = in[i];
      if (c == '\n') {
        quote = Quote::None, comment = false, last = 0;
        result.text += c, ++i;
        continue;
      }
      if (!comment && c == '$' && i + 2 < in.size() && in[i + 1] == '$' && in[i + 2] == '{') {
        replace(i, i + 3, "${");
        i += 3;
        continue;
      }
      if (!comment && c == '$' && i + 1 < in.size() && in[i + 1] == '{') {
        i = reference(i, quote);
        last = 'x';
        continue;
      }
      if (quote == Quote::Double) {
        if (c == '\\' && i + 1 < in.size() && in[i + 1] != '\n') {
          result.text += c, result.text += in[i + 1], i += 2;
          continue;
        }
        if (c == '"') quote = Quote::None;
      } else if (quote == Quote::Single) {
        if (c == '\'' && i + 1 < in.size() && in[i + 1] == '\'') {
          result.text += "''", i += 2;
          continue;
        }
        if (c == '\'') quote = Quote::None;
      } else if (!comment) {
        if (c == '#' && (i == 0 || in[i - 1] == ' ' || in[i - 1] == '\t' || in[i - 1] == '\n')) {
          comment = true;
        } else if ((c == '"' || c == '\'') &&
                   (last == 0 || last == ':' || last == '-' || last == '[' || last == '{' || last == ',' ||
                    last == '?')) {
          quote = c == '"' ? Quote::Double : Quote::Single;
        }
        if (c != ' ' && c != '\t') last = c;
      }
      result.text += c, ++i;
    }
    result.positions.out_line_starts_ = line_starts(result.text);
    result.positions.orig_line_starts_ = line_starts(in);
    for (auto& [offset, message] : error_offsets)
      result.errors.push_back({mark_at(result.positions.orig_line_starts_, offset), std::move(message)});
  }
};

std::optional<std::size_t> PositionMap::offset_of(Mark m) const {
  if (m.line <= 0 || out_line_starts_.empty()) return std::nullopt;
  std::size_t line = std::min<std::size_t>(static_cast<std::size_t>(m.line), out_line_starts_.size());
  return out_line_starts_[line - 1] + static_cast<std::size_t>(std::max(m.col, 1) - 1);
}

Mark PositionMap::to_original(Mark m) const {
  auto at = offset_of(m);
  if (!at || segments_.empty()) return m;
  std::size_t off = *at;
  auto it = std::upper_bound(segments_.begin(), segments_.end(), off,
                             [](std::size_t o, const Segment& s) { return o < s.out_begin; });
  const Segment& seg = *std::prev(it);
  std::size_t orig = seg.replaced ? seg.orig_begin : seg.orig_begin + (off - seg.out_begin);
  return mark_at(orig_line_starts_, orig);
}

namespace {

// Walks NODE (at PATH) and records, for each placeholder found in a scalar, that scalar's path.
// A placeholder in a key names the mapping that holds it.
void find_placeholders(const YAML::Node& node, const std::string& path, std::vector<std::string>& fields) {
  auto scan = [&](const std::string& text, const std::string& at) {
    for (std::size_t n = 0; n < fields.size(); ++n)
      if (fields[n].empty() && text.find(placeholder(n)) != std::string::npos) fields[n] = at;
  };
  auto join = [](const std::string& parent, const std::string& key) { return parent.empty() ? key : parent + "." + key; };
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      scan(node.Scalar(), path.empty() ? "(root)" : path);
      break;
    case YAML::NodeType::Sequence: {
      std::size_t i = 0;
      for (const YAML::Node& item : node) find_placeholders(item, fmt::format("{}[{}]", path, i++), fields);
      break;
    }
    case YAML::NodeType::Map:
      for (auto it = node.begin(); it != node.end(); ++it) {
        const std::string key = it->first.IsScalar() ? it->first.Scalar() : std::string();
        if (it->first.IsScalar()) scan(key, path.empty() ? "(root)" : path);
        find_placeholders(it->second, join(path, key), fields);
      }
      break;
    default:
      break;
  }
}

}  // namespace

SubstitutedText substitute_env(std::string_view text, const EnvLookup& lookup) {
  EnvSubstituter s{text, lookup};
  s.run();
  if (s.result.errors.empty()) return std::move(s.result);

  // Name the field of each error: substitute again with placeholders and find them in the tree.
  EnvSubstituter located{text, lookup, true};
  located.run();
  std::vector<std::string> fields(located.result.errors.size());
  try {
    find_placeholders(YAML::Load(located.result.text), "", fields);
  } catch (const YAML::Exception&) {
    // Not YAML: the parse of the real text reports that; the errors keep no field.
  }
  for (std::size_t n = 0; n < s.result.errors.size() && n < fields.size(); ++n)
    s.result.errors[n].field = std::move(fields[n]);
  return std::move(s.result);
}

}  // namespace gh::config

namespace gh::config {

bool SubstitutedText::caused_by_error(Mark m) const {
  auto at = positions.offset_of(m);
  if (!at) return false;
  for (std::size_t ref : error_offsets) {
    // The diagnostic's value starts at or shortly before the reference, in the same scalar:
    // nothing between them ends a line or a flow collection item.
    if (*at > ref || ref - *at > 256) continue;
    std::string_view between = std::string_view(text).substr(*at, ref - *at);
    if (between.find_first_of(",[]{}\n") == std::string_view::npos) return true;
  }
  return false;
}

}  // namespace gh::config
