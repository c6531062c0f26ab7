// Test helper: real files for the loader's checks that certificate, key and CA paths can be
// read. One directory per test binary, made under the system's temporary directory when first
// asked for and removed at exit. What the files hold does not matter to the loader (the TLS
// code reads them), so they hold a line of text.
#pragma once

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace gh::config::test {

class TestFiles {
 public:
  // `cert.pem`, `key.pem`, `cert2.pem`, `key2.pem`, `ca.pem`, `client.pem`, `client.key`;
  // `link.pem`, a symlink to cert.pem (as Kubernetes mounts a secret); `dangling.pem`, a
  // symlink to nothing; `fifo.pem`, a named pipe; `dir`, a directory. `missing.pem` does not
  // exist.
  static const TestFiles& get() {
    static const TestFiles files;
    return files;
  }

  // The full path of `name` in the directory.
  std::string operator()(const std::string& name) const { return (dir_ / name).string(); }
  const std::string& dir() const { return dir_str_; }

  TestFiles(const TestFiles&) = delete;
  TestFiles& operator=(const TestFiles&) = delete;
  ~TestFiles() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

 private:
  TestFiles() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "gh-config-test-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    dir_str_ = tmpl;
    for (const char* name : {"cert.pem", "key.pem", "cert2.pem", "key2.pem", "ca.pem", "client.pem", "client.key"})
      std::ofstream(dir_ / name) << name << "\n";
    std::filesystem::create_symlink(dir_ / "cert.pem", dir_ / "link.pem");
    std::filesystem::create_symlink(dir_ / "gone.pem", dir_ / "dangling.pem");
    std::filesystem::create_directory(dir_ / "dir");
    if (::mkfifo((dir_ / "fifo.pem").c_str(), 0600) != 0) throw std::runtime_error("mkfifo failed");
  }

  std::filesystem::path dir_;
  std::string dir_str_;
};

// `text` with every `{D}` replaced by the directory of TestFiles.
inline std::string with_files(std::string text) {
  const std::string& dir = TestFiles::get().dir();
  for (auto at = text.find("{D}"); at != std::string::npos; at = text.find("{D}", at + dir.size()))
    text.replace(at, 3, dir);
  return text;
}

}  // namespace gh::config::test
