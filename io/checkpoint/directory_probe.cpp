// probe_writable_directory: a save's file operations tried on a small file before a run's first
// step, so that a read-only, full or forbidden directory is found before any work is lost.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "core/host_facts.hpp"
#include "io/checkpoint/checkpoint.hpp"
#include "io/checkpoint/checkpoint_internal.hpp"

namespace tessera {
namespace {

/// Enough bytes to need a data block on any file system, so a full one says so.
constexpr std::size_t kProbeBytes = 4096;

std::string failed(const std::string& what, const std::filesystem::path& path, int error) {
  return what + " " + path.string() + ": " + std::strerror(error);
}

/// Writes the probe's bytes into a new file; the problem, if any.
std::optional<std::string> write_probe(const std::filesystem::path& file) {
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return failed("cannot create", file, errno);
  const std::vector<char> bytes(kProbeBytes, 'x');
  const ssize_t written = ::write(fd, bytes.data(), bytes.size());
  const int write_error = errno;
  // A short write without an error is a full disk that took what it had room for.
  const std::optional<std::string> problem =
      written == static_cast<ssize_t>(bytes.size())
          ? std::nullopt
          : std::optional(failed("cannot write", file, written < 0 ? write_error : ENOSPC));
  if (::close(fd) != 0 && !problem) return failed("cannot close", file, errno);
  return problem;
}

}  // namespace

std::optional<std::string> probe_writable_directory(const std::filesystem::path& directory) {
  std::error_code error;
  std::filesystem::create_directories(directory, error);
  if (error) return "cannot create " + directory.string() + ": " + error.message();
  const std::string name = ".tessera-probe-" + host_name() + "-" + std::to_string(getpid());
  const auto temp = directory / (name + ".tmp"), file = directory / name;
  std::optional<std::string> problem = write_probe(temp);
  if (!problem) problem = checkpoint_detail::publish_file(temp, file);
  std::filesystem::remove(temp, error);
  std::filesystem::remove(file, error);
  return problem;
}

}  // namespace tessera
