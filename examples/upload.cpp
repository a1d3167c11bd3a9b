// SPDX-License-Identifier: MIT
// upload: saves the files of multipart/form-data uploads (RFC 7578) into a directory. It
// streams: each part's bytes go from the request body through http::MultipartParser to disk as
// they arrive, so a request holds one 64 KiB read buffer and the parser's part-header buffer,
// whatever the size of the upload.
//
//   GET    an HTML form to upload files with a browser.
//   POST   a multipart/form-data body. Every part with a non-empty filename is saved as
//          DIR/NAME, NAME being the filename's last path segment with every byte other than
//          ASCII letters, digits, '.', '-' and '_' replaced by '_' and leading dots removed
//          ("upload" when nothing is left), readable by its owner only (mode 0600); a file
//          of that name is replaced. Other parts (form fields) are counted, not kept. The
//          answer is 200, text/plain, one line per part in order: "saved NAME BYTES" or
//          "field NAME BYTES".
//
// An upload is all or nothing: each file is written to a temporary file in DIR, and the
// temporary files are renamed into place only once the whole body has parsed. A body that is
// not multipart/form-data is answered 415, a malformed or truncated one 400 (with the reason),
// any other method 405; then, as when the client goes away mid-upload, no file of it remains.
// Bodies longer than --max-bytes (CONTENT_LENGTH; default 1 GiB) are refused with 413 by the
// server before the handler runs.
//
// Usage: upload --dir DIR [--listen ADDRESS]... [--max-bytes N] (ADDRESS as for echo; by
// default the socket the process was started with). Serves until SIGINT or SIGTERM, then
// drains.

#include <fmt/core.h>
#include <stdlib.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "fcgimux/fcgimux.hpp"

namespace http = fcgimux::http;

constexpr std::string_view kUsage =
    "usage: upload --dir DIR [--listen ADDRESS]... [--max-bytes N]\n"
    "  saves multipart/form-data uploads into DIR; ADDRESS as for echo\n";

constexpr std::string_view kForm =
    "<!doctype html>\n"
    "<title>upload</title>\n"
    "<form method=\"post\" enctype=\"multipart/form-data\">\n"
    "  <input type=\"file\" name=\"file\" multiple>\n"
    "  <button>Upload</button>\n"
    "</form>\n";

// The name a client's filename is saved under, as the file comment says: never a path, never
// hidden, never "." or "..".
std::string safe_file_name(std::string_view filename) {
  if (const std::size_t slash = filename.find_last_of("/\\"); slash != std::string_view::npos) {
    filename.remove_prefix(slash + 1);
  }
  std::string name;
  for (const char c : filename.substr(0, 200)) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '.' || c == '-' || c == '_';
    name += plain ? c : '_';
  }
  name.erase(0, name.find_first_not_of('.'));
  return name.empty() ? "upload" : name;
}

// A file being uploaded: a temporary file in the upload directory, removed on destruction
// unless commit() has renamed it into place. Throws std::system_error when the disk refuses.
// Threading: one thread at a time.
class PendingFile {
 public:
  explicit PendingFile(const std::filesystem::path& dir)
      : temp_path_((dir / ".upload-XXXXXX").string()) {
    fd_ = ::mkstemp(temp_path_.data());
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "mkstemp");
  }
  ~PendingFile() {
    close();
    if (!committed_) ::unlink(temp_path_.c_str());
  }
  PendingFile(const PendingFile&) = delete;
  PendingFile& operator=(const PendingFile&) = delete;

  void write(std::span<const std::byte> bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw std::system_error(errno, std::generic_category(), "write " + temp_path_);
      bytes = bytes.subspan(static_cast<std::size_t>(n));
    }
  }
  void close() {
    if (fd_ >= 0 && ::close(std::exchange(fd_, -1)) != 0) {
      throw std::system_error(errno, std::generic_category(), "close " + temp_path_);
    }
  }
  void commit(const std::filesystem::path& path) {
    close();
    std::filesystem::rename(temp_path_, path);
    committed_ = true;
  }

 private:
  std::string temp_path_;
  int fd_ = -1;
  bool committed_ = false;
};

// One part of an upload, as the answer lists it.
struct UploadedPart {
  std::string name;  // the saved file's name, or the field's name
  std::size_t bytes = 0;
  std::unique_ptr<PendingFile> file;  // for a file part, until it is committed
};

// Threading: Immutable after construction; safe to share.
class UploadHandler : public fcgimux::Handler {
 public:
  explicit UploadHandler(std::filesystem::path dir) : dir_(std::move(dir)) {}

  void handle(fcgimux::Request& request, fcgimux::Response& response) override {
    const std::string_view method = http::method(request);
    if (method == "GET" || method == "HEAD") {
      response.header("Content-Type", "text/html; charset=utf-8");
      response.write(kForm);
      return;
    }
    if (method != "POST") {
      response.header("Allow", "GET, HEAD, POST");
      http::send_status(response, 405);
      return;
    }
    const auto boundary =
        http::form_data_boundary(http::header(request, "Content-Type").value_or(""));
    if (!boundary) {
      http::send_status(response, 415);
      return;
    }

    std::vector<UploadedPart> parts;
    http::MultipartParser parser(*boundary, {.on_part_begin =
                                                 [&](const http::Part& part) {
                                                   UploadedPart& uploaded = parts.emplace_back();
                                                   if (part.filename && !part.filename->empty()) {
                                                     uploaded.name = safe_file_name(*part.filename);
                                                     uploaded.file =
                                                         std::make_unique<PendingFile>(dir_);
                                                   } else {
                                                     uploaded.name = part.name;
                                                   }
                                                 },
                                             .on_part_data =
                                                 [&](std::span<const std::byte> data) {
                                                   UploadedPart& uploaded = parts.back();
                                                   uploaded.bytes += data.size();
                                                   if (uploaded.file) uploaded.file->write(data);
                                                 },
                                             .on_part_end =
                                                 [&] {
                                                   if (parts.back().file)
                                                     parts.back().file->close();
                                                 }});

    std::array<std::byte, 64 * 1024> buffer;
    http::Error error = http::Error::None;
    for (std::size_t n; error == http::Error::None && (n = request.read(buffer)) > 0;) {
      error = parser.feed(std::span(buffer).first(n));
    }
    if (request.stop_token().stop_requested()) return;  // gone: the pending files go too
    if (error == http::Error::None) error = parser.finish();
    if (error != http::Error::None) {
      response.status(400);
      response.header("Content-Type", "text/plain; charset=utf-8");
      response.print("400 {}: {}\n", http::reason_phrase(400), http::to_string(error));
      return;
    }

    std::string listing;
    for (UploadedPart& part : parts) {
      if (part.file) part.file->commit(dir_ / part.name);
      listing += fmt::format("{} {} {}\n", part.file ? "saved" : "field", part.name, part.bytes);
    }
    response.header("Content-Type", "text/plain; charset=utf-8");
    response.write(listing);
  }

 private:
  std::filesystem::path dir_;
};

int main(int argc, char** argv) {
  fcgimux::Config config{.listen = {}, .roles = {fcgimux::Role::Responder}};
  config.max_body_bytes = std::size_t{1} << 30;
  std::filesystem::path dir;
  const std::span<char*> args(argv + 1, static_cast<std::size_t>(argc - 1));
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view flag = args[i];
    const std::string_view value = i + 1 < args.size() ? args[++i] : "";
    if (flag == "--dir" && !value.empty()) {
      dir = value;
    } else if (flag == "--listen" && !value.empty()) {
      config.listen.emplace_back(value);
    } else if (flag == "--max-bytes" && !value.empty()) {
      const char* end = value.data() + value.size();
      const auto [stop, error] = std::from_chars(value.data(), end, config.max_body_bytes);
      if (error != std::errc{} || stop != end) {
        fmt::print(stderr, "upload: --max-bytes wants a number, not '{}'\n", value);
        return 2;
      }
    } else {
      fmt::print(stderr, "upload: bad argument '{}'\n{}", flag, kUsage);
      return 2;
    }
  }
  std::error_code error;
  if (dir.empty() || !std::filesystem::is_directory(dir, error)) {
    fmt::print(stderr, "upload: --dir wants an existing directory\n{}", kUsage);
    return 2;
  }

  try {
    UploadHandler handler(dir);
    fcgimux::Server server(config, handler);
    // local_endpoints() waits until run() has bound its listeners (empty if binding failed).
    const std::jthread announcer([&server] {
      for (const auto& address : server.local_endpoints()) fmt::print("listening on {}\n", address);
      std::fflush(stdout);
    });
    server.run();
  } catch (const std::exception& failure) {
    fmt::print(stderr, "upload: {}\n", failure.what());
    return 1;
  }
  return 0;
}
