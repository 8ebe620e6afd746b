#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "io/metrics/metrics.hpp"

namespace tessera {
namespace {

/// Writes all of `text`, retrying short writes; false (errno set) on failure.
bool write_all(int fd, std::string_view text) {
  while (!text.empty()) {
    ssize_t written = ::write(fd, text.data(), text.size());
    if (written < 0 && errno == EINTR) continue;
    if (written < 0) return false;
    text.remove_prefix(static_cast<size_t>(written));
  }
  return true;
}

/// True if the file (opened for reading too) is non-empty and its last byte is not a newline (a run
/// killed mid-line before this writer existed, or a file edited by hand).
bool ends_mid_line(int fd) {
  off_t size = ::lseek(fd, 0, SEEK_END);
  if (size <= 0) return false;
  char last = '\n';
  return ::pread(fd, &last, 1, size - 1) == 1 && last != '\n';
}

}  // namespace

nlohmann::json to_json(const StepReport& report) {
  return {{"kind", "train"},
          {"step", report.step},
          {"total_steps", report.total_steps},
          {"loss", report.loss},
          {"lr", report.lr},
          {"grad_norm", report.grad_norm},
          {"tokens_per_s", report.tokens_per_s},
          {"mfu", report.mfu},
          {"elapsed_s", report.elapsed_s}};
}

MetricsWriter::MetricsWriter(const std::filesystem::path& run_dir)
    : path_(run_dir / "metrics.jsonl") {
  std::error_code error;
  std::filesystem::create_directories(run_dir, error);
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    throw UsageError("cannot open '" + path_.string() + "' for appending (" + std::strerror(errno) +
                     "); check that run.dir is writable");
  }
  // Keep a torn last line of an earlier run from swallowing this run's first record.
  if (ends_mid_line(fd_)) TESSERA_CHECK(write_all(fd_, "\n"), std::strerror(errno));
}

MetricsWriter::~MetricsWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void MetricsWriter::write(const nlohmann::json& record) {
  TESSERA_CHECK(record.is_object(), "a metrics record is a JSON object, got " + record.dump());
  // dump() without indent has no newline; invalid UTF-8 is replaced rather than thrown on.
  std::string line = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  // Whole or not at all: a write cut short (a full disk, a quota) is cut back to the end of the
  // last whole record, so readers never meet half a record.
  const off_t end = ::lseek(fd_, 0, SEEK_END);
  if (!write_all(fd_, line)) {
    const int error = errno;
    if (end >= 0) static_cast<void>(::ftruncate(fd_, end));
    throw UsageError("cannot append to '" + path_.string() + "' (" + std::strerror(error) +
                     "); check free space and quota of run.dir");
  }
}

}  // namespace tessera
