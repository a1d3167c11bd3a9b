// SPDX-License-Identifier: MIT
// The upload example program (FCGIMUX_UPLOAD_BINARY, built from examples/upload.cpp): uploads
// of several MiB cut into many records, and through a real nginx, land on disk byte for byte;
// bad uploads leave nothing behind.

#include <fmt/core.h>
#include <signal.h>

#include <catch2/catch.hpp>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "bytes.hpp"
#include "child_process.hpp"
#include "fcgi_client.hpp"
#include "nginx.hpp"
#include "temp_dir.hpp"
#include "web_peer.hpp"

namespace fcgimux::test {
namespace {

constexpr std::string_view kBoundary = "----fcgimuxTestBoundary7MA4YWxkTrZu0gW";

// The upload example saving into a fresh temporary directory, on an ephemeral port.
class UploadExample {
 public:
  UploadExample() {
    std::filesystem::create_directory(dir());
    process_.emplace(std::vector<std::string>{FCGIMUX_UPLOAD_BINARY, "--dir", dir().string(),
                                              "--listen", "tcp:127.0.0.1:0"});
    address_ = announced_address(*process_);
  }

  std::filesystem::path dir() const { return temp_.path() / "uploads"; }
  const std::string& address() const { return address_; }

  // The names of the files in the upload directory, hidden ones included.
  std::set<std::string> files() const {
    std::set<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(dir())) {
      names.insert(entry.path().filename().string());
    }
    return names;
  }

  std::string file(std::string_view name) const {
    std::ifstream in(dir() / name, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  // The most memory the process has held so far (VmHWM, its peak resident set), in bytes.
  std::size_t peak_rss() const {
    std::ifstream status(fmt::format("/proc/{}/status", process_->pid()));
    for (std::string line; std::getline(status, line);) {
      if (line.starts_with("VmHWM:")) return std::stoul(line.substr(6)) * 1024;  // in kB
    }
    throw TestError("no VmHWM in /proc/PID/status");
  }

  // Stops it with SIGTERM and returns its exit code.
  int stop() {
    process_->signal(SIGTERM);
    return process_->wait();
  }

 private:
  TempDir temp_;
  std::optional<ChildProcess> process_;
  std::string address_;
};

struct FormPart {
  std::string name;
  std::optional<std::string> filename;
  std::string content;
};

// A multipart/form-data body (RFC 7578) of `parts`, as a browser writes it.
std::string multipart_body(const std::vector<FormPart>& parts) {
  std::string body;
  for (const FormPart& part : parts) {
    body.append("--").append(kBoundary).append("\r\n");
    body.append("Content-Disposition: form-data; name=\"").append(part.name).append("\"");
    if (part.filename) body.append("; filename=\"").append(*part.filename).append("\"");
    body.append("\r\n");
    if (part.filename) body.append("Content-Type: application/octet-stream\r\n");
    body.append("\r\n").append(part.content).append("\r\n");
  }
  return body.append("--").append(kBoundary).append("--\r\n");
}

Params upload_params(const std::string& body, std::string_view content_type) {
  return {{"REQUEST_METHOD", "POST"},
          {"REQUEST_URI", "/upload"},
          {"CONTENT_TYPE", std::string(content_type)},
          {"CONTENT_LENGTH", std::to_string(body.size())}};
}

std::string form_data_type() { return "multipart/form-data; boundary=" + std::string(kBoundary); }

TEST_CASE("the upload example saves each file of a multi-MiB upload byte for byte",
          "[integration][examples]") {
  UploadExample upload;
  const std::string big = pattern(12 * 1024 * 1024 + 3, 11);
  // Bytes that look like the start of a delimiter, and a delimiter with another boundary.
  const std::string tricky = "a\r\n--" + std::string(kBoundary.substr(0, 20)) + "\r\n--x\r\n\r\nz";
  const std::string body = multipart_body({{"comment", std::nullopt, "several files"},
                                           {"file", "big.bin", big},
                                           {"file", "../../etc/odd name;.txt", tricky},
                                           {"file", "empty.dat", ""}});
  // Many records of uneven sizes, as no web server cuts them, so part boundaries and
  // delimiters straddle records.
  RequestOptions options;
  options.body.record_sizes = {65'535, 1, 4'093, 17, 32'768};

  [[maybe_unused]] const std::size_t peak_before = upload.peak_rss();
  FcgiClient client(upload.address());
  const Response response = client.request(upload_params(body, form_data_type()), body, options);
  REQUIRE(response.end.has_value());
  const CgiResponse cgi = parse_cgi_response(response.out);
  CHECK(cgi.status == 200);
  CHECK(cgi.body ==
        "field comment 13\n"
        "saved big.bin 12582915\n"
        "saved odd_name_.txt " +
            std::to_string(tricky.size()) +
            "\n"
            "saved empty.dat 0\n");

  // Only the saved files: no temporary file is left behind.
  CHECK(upload.files() == std::set<std::string>{"big.bin", "odd_name_.txt", "empty.dat"});
  CHECK(first_mismatch(upload.file("big.bin"), big) == std::string::npos);
  CHECK(upload.file("odd_name_.txt") == tricky);
  CHECK(upload.file("empty.dat").empty());
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  // Streamed, not buffered: the upload grew the process by far less than its size. (Sanitizers
  // keep freed memory in quarantine and shadow every byte, so they are left out.)
  CAPTURE(peak_before, upload.peak_rss());
  CHECK(upload.peak_rss() - peak_before < big.size() / 2);
#endif
  CHECK(upload.stop() == 0);
}

TEST_CASE("the upload example refuses bad uploads and keeps no file of them",
          "[integration][examples]") {
  UploadExample upload;
  const std::string whole = multipart_body(
      {{"file", "first.bin", pattern(300'000, 5)}, {"file", "second.bin", pattern(1'000, 6)}});

  SECTION("a body cut short before its final boundary is answered 400") {
    const std::string body = whole.substr(0, whole.size() - 100);
    FcgiClient client(upload.address());
    const Response response = client.request(upload_params(body, form_data_type()), body);
    REQUIRE(response.end.has_value());
    const CgiResponse cgi = parse_cgi_response(response.out);
    CHECK(cgi.status == 400);
    CHECK_THAT(cgi.body, Catch::Contains("final boundary"));
  }
  SECTION("a body that is not multipart/form-data is answered 415") {
    FcgiClient client(upload.address());
    const Response response =
        client.request(upload_params(whole, "application/octet-stream"), whole);
    REQUIRE(response.end.has_value());
    CHECK(parse_cgi_response(response.out).status == 415);
  }
  SECTION("a client that goes away mid-upload leaves no temporary file") {
    FcgiClient client(upload.address());
    client.send_begin_request(1, true);
    client.send_params(1, upload_params(whole, form_data_type()));
    // The first 200,000 bytes of the body, without the empty record that would end it.
    const std::vector<std::string> records =
        stream_records(protocol::RecordType::Stdin, 1, std::string_view(whole).substr(0, 200'000));
    for (std::size_t i = 0; i + 1 < records.size(); ++i) client.send_raw(records[i]);
    // Once the handler holds a temporary file, the client vanishes.
    REQUIRE(eventually([&] { return upload.files().size() == 1; }));
  }
  // The connection closed, or the request ended: the handler's temporary files go.
  FcgiClient later(upload.address());
  const Response form = later.request({{"REQUEST_METHOD", "GET"}, {"REQUEST_URI", "/"}});
  REQUIRE(form.end.has_value());
  CHECK_THAT(parse_cgi_response(form.out).body, Catch::Contains("multipart/form-data"));
  CHECK(eventually([&] { return upload.files().empty(); }));
  CHECK(upload.stop() == 0);
}

TEST_CASE("nginx passes a multi-MiB browser upload through to the upload example",
          "[integration][examples][nginx]") {
  if (!NginxFrontend::available()) return;
  UploadExample upload;
  const NginxFrontend nginx(upload.address(), "64m");

  const std::string photo = pattern(5 * 1024 * 1024 + 1, 21);
  const std::string notes = "line one\nline two\n";
  const std::string body = multipart_body({{"file", "holiday photo.jpg", photo},
                                           {"file", "notes.txt", notes},
                                           {"tag", std::nullopt, "x"}});
  const HttpResponse response = http_exchange(
      nginx.address(),
      "POST /upload HTTP/1.0\r\nHost: localhost\r\nContent-Type: " + form_data_type() +
          "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  INFO("nginx error log:\n" << nginx.error_log());
  REQUIRE(response.status == 200);
  CHECK(response.message.body ==
        "saved holiday_photo.jpg 5242881\n"
        "saved notes.txt 18\n"
        "field tag 1\n");
  CHECK(upload.files() == std::set<std::string>{"holiday_photo.jpg", "notes.txt"});
  CHECK(first_mismatch(upload.file("holiday_photo.jpg"), photo) == std::string::npos);
  CHECK(upload.file("notes.txt") == notes);
  CHECK(upload.stop() == 0);
}

}  // namespace
}  // namespace fcgimux::test
