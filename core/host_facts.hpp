// Facts about this process's host that records and messages name: the time as text, the host,
// the memory a run may still take.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace tessera {

/// `unix_time` (seconds) as ISO 8601 UTC, e.g. "2026-12-04T15:20:32Z".
std::string utc_text(double unix_time);

/// This host's name, or "?" when the system will not say.
std::string host_name();

/// Bytes this process may still allocate on its host: the kernel's MemAvailable, lowered to
/// what is left under the process's cgroup (v2) memory.max where one is set (a Slurm job's
/// allocation). nullopt when /proc/meminfo cannot be read.
std::optional<std::size_t> available_host_memory();

}  // namespace tessera
