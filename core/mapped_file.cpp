#include "core/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "core/error.hpp"

namespace tessera {

MappedFile::MappedFile(const std::filesystem::path& path, std::string_view what,
                       std::string_view fix) {
  const std::string named = std::string(what) + " " + path.string();
  // O_NONBLOCK: opening a FIFO does not wait for a writer (it is refused below); reads of a
  // regular file ignore the flag.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    throw UsageError("cannot open " + named + ": " + std::strerror(errno) + std::string(fix));
  }
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    ::close(fd);
    TESSERA_CHECK(false, "fstat " + path.string() + ": " + std::strerror(errno));
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(fd);
    throw UsageError(named + " is not a regular file (a FIFO, device or directory)" +
                     std::string(fix));
  }
  size_ = static_cast<std::size_t>(info.st_size);
  if (size_ > 0) {
    void* address = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
    const int mmap_errno = errno;
    ::close(fd);
    TESSERA_CHECK(address != MAP_FAILED,
                  "mmap " + path.string() + ": " + std::strerror(mmap_errno));
    data_ = static_cast<const std::byte*>(address);
  } else {
    ::close(fd);
  }
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
}

}  // namespace tessera
