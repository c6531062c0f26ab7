// Env substitution: replaces ${VAR} and ${VAR:-default} in a config's raw text before YAML
// parsing, and maps positions in the substituted text back to the file the user wrote.
// Thread: pure functions and plain values.
// Failure: an unset ${VAR} without a default, or a malformed reference, is reported as an
// EnvError at its place in the original text; the reference is replaced by nothing so that
// parsing can go on and report the file's other problems too.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace gh::config {

// Maps a Mark in the substituted text to the Mark of the same character in the original text.
// A Mark that falls inside a substituted value maps to the `$` that began its reference, so
// line numbers and columns in diagnostics always point into the file as written.
class PositionMap {
 public:
  Mark to_original(Mark substituted) const;
  // The offset in the substituted text of a Mark in it; nullopt when out of range.
  std::optional<std::size_t> offset_of(Mark substituted) const;

 private:
  friend struct EnvSubstituter;
  struct Segment {
    std::size_t out_begin;
    std::size_t orig_begin;
    bool replaced;  // a substituted value: every offset in it maps to orig_begin
  };
  std::vector<Segment> segments_;            // ordered by out_begin
  std::vector<std::size_t> out_line_starts_;
  std::vector<std::size_t> orig_line_starts_;
};

struct EnvError {
  Mark mark;  // in the original text
  std::string message;
  std::string field;  // path of the value the reference stands in, e.g. services.user.instances[1];
                      // empty when the text does not parse as YAML
};

struct SubstitutedText {
  std::string text;
  PositionMap positions;
  std::vector<EnvError> errors;
  std::vector<std::size_t> error_offsets;  // where each erroneous reference stood in `text`

  // True when a diagnostic at `m` (a Mark in `text`) is about a value that an erroneous
  // reference emptied: such a diagnostic only repeats the EnvError in other words.
  bool caused_by_error(Mark m) const;
};

// Returns the value of an environment variable, or nullptr when it is unset.
using EnvLookup = std::function<const char*(const std::string&)>;

// Replaces every `${NAME}` and `${NAME:-default}` (the default is used when NAME is unset or
// empty, as in the shell). `$${` stands for a literal `${`. References inside YAML comments are
// left alone. NAME is [A-Za-z_][A-Za-z0-9_]*. The default lookup reads the process environment.
// Each error names the field it stands in: the text is substituted again with a placeholder
// for each erroneous reference and parsed, and the scalar holding the placeholder gives the path.
SubstitutedText substitute_env(std::string_view text, const EnvLookup& lookup = {});

}  // namespace gh::config
