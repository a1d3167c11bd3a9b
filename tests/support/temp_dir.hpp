// SPDX-License-Identifier: MIT
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>

#include "socket.hpp"

namespace fcgimux::test {

// A fresh directory under the system's temporary directory, removed with everything in it on
// destruction. Its path is short enough for Unix socket names.
// Threading: Immutable after construction; safe to share.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "fcgimux-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw TestError("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace fcgimux::test
