/* A fault injector for tests (LD_PRELOAD): writes to files whose path contains
 * $TESSERA_FAIL_WRITES_MATCH fail with ENOSPC once $TESSERA_FAIL_WRITES_AFTER bytes have been
 * written to such files in this process, the way a file system that fills up mid-write answers.
 * It wraps the calls MPI-IO and stdio write through; everything else passes unchanged. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static long long written_to_matches = 0;

/* 1 when the write of `bytes` to `fd` must fail. */
static int refuse(int fd, size_t bytes) {
  const char* match = getenv("TESSERA_FAIL_WRITES_MATCH");
  const char* after = getenv("TESSERA_FAIL_WRITES_AFTER");
  if (match == NULL || after == NULL) return 0;
  char link[64], target[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  const ssize_t length = readlink(link, target, sizeof target - 1);
  if (length <= 0) return 0;
  target[length] = '\0';
  if (strstr(target, match) == NULL) return 0;
  if (written_to_matches + (long long)bytes > atoll(after)) {
    errno = ENOSPC;
    return 1;
  }
  written_to_matches += (long long)bytes;
  return 0;
}

static size_t total(const struct iovec* parts, int count) {
  size_t bytes = 0;
  for (int i = 0; i < count; ++i) bytes += parts[i].iov_len;
  return bytes;
}

#define NEXT(name) static __typeof__(name)* next; if (next == NULL) next = dlsym(RTLD_NEXT, #name)

ssize_t write(int fd, const void* data, size_t bytes) {
  NEXT(write);
  return refuse(fd, bytes) ? -1 : next(fd, data, bytes);
}
ssize_t pwrite(int fd, const void* data, size_t bytes, off_t offset) {
  NEXT(pwrite);
  return refuse(fd, bytes) ? -1 : next(fd, data, bytes, offset);
}
ssize_t pwrite64(int fd, const void* data, size_t bytes, off_t offset) {
  NEXT(pwrite64);
  return refuse(fd, bytes) ? -1 : next(fd, data, bytes, offset);
}
ssize_t writev(int fd, const struct iovec* parts, int count) {
  NEXT(writev);
  return refuse(fd, total(parts, count)) ? -1 : next(fd, parts, count);
}
ssize_t pwritev(int fd, const struct iovec* parts, int count, off_t offset) {
  NEXT(pwritev);
  return refuse(fd, total(parts, count)) ? -1 : next(fd, parts, count, offset);
}
