// `check` equals `run`: every config under tests/fixtures/configs goes through both, and they
// agree. A file `check` accepts makes `run` listen; a file `check` refuses makes `run` exit 1
// with the same errors. valid-* files must pass, invalid-* must fail; agree-* may go either way.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "harness/assertions.h"

namespace gh::integ {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream s(text);
  for (std::string line; std::getline(s, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

TEST(CheckEqualsRun, EveryFixtureConfigAgrees) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(fs::path(GH_FIXTURES_DIR) / "configs"))
    if (e.path().extension() == ".yaml") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  ASSERT_GE(files.size(), 8u);
  for (const fs::path& file : files) {
    const std::string name = file.filename().string();
    SCOPED_TRACE(name);
    Gateway::Options options;
    options.add_header = false;
    options.workers = 1;
    Gateway gw(read_file(file.string()), options);
    // The very file `run` reads, placeholders filled in.
    auto check = run_gatehouse({"check", "-c", gw.config_path()});
    const bool ran = gw.start(10s);
    if (name.starts_with("valid-")) {
      EXPECT_EQ(check.exit_code, 0) << check.err;
    }
    if (name.starts_with("invalid-")) {
      EXPECT_EQ(check.exit_code, 1) << check.out;
    }
    if (check.exit_code == 0) {
      EXPECT_TRUE(ran) << "check passed but run did not listen: " << gw.diagnostics();
      if (ran) {
        EXPECT_EQ(gw.stop(), 0);
      }
      continue;
    }
    EXPECT_FALSE(ran) << "check failed but run listens:\n" << check.err;
    auto code = gw.stop();
    EXPECT_EQ(code, 1);
    EXPECT_FALSE(check.err.empty());
    for (const std::string& line : lines_of(check.err))
      EXPECT_NE(gw.stderr_text().find(line), std::string::npos)
          << "check said \"" << line << "\"; run said:\n" << gw.stderr_text();
  }
}

}  // namespace
}  // namespace gh::integ
