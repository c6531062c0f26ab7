// Test helper: runs a script of the npm `jose` fixture (tests/fixtures/jose) and reads what it
// wrote. The fixture's packages are installed by scripts/deps.sh (`npm ci`), never by a test.
// Thread: test code only. REQUIRES: GH_FIXTURES_DIR defined for the test target.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace gh::policies::jose_fixture {

inline std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

// A fresh output directory under the test temp dir, unique to this process.
inline std::filesystem::path out_dir(const std::string& prefix) {
  return std::filesystem::path(::testing::TempDir()) / (prefix + std::to_string(::getpid()));
}

// Runs `node SCRIPT OUT_DIR` and returns the text of OUT_DIR/OUTPUT; on failure returns "" and
// sets `error` to the command that failed.
inline std::string run(const std::string& script, const std::filesystem::path& out, const std::string& output,
                       std::string& error) {
  const std::filesystem::path dir = std::filesystem::path(GH_FIXTURES_DIR) / "jose";
  if (!std::filesystem::exists(dir / "node_modules" / "jose" / "package.json")) {
    error = (dir / "node_modules").string() + " is missing: run scripts/deps.sh (it runs npm ci there)";
    return {};
  }
  std::string cmd = "node " + shell_quote((dir / script).string()) + " " + shell_quote(out.string()) + " >&2";
  if (std::system(cmd.c_str()) != 0) {
    error = "`" + cmd + "` failed";
    return {};
  }
  std::ifstream in(out / output);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace gh::policies::jose_fixture
