// Facts about this process's host that records and messages name: the time as text and the host.
#pragma once

#include <string>

namespace tessera {

/// `unix_time` (seconds) as ISO 8601 UTC, e.g. "2026-12-04T15:20:32Z".
std::string utc_text(double unix_time);

/// This host's name, or "?" when the system will not say.
std::string host_name();

}  // namespace tessera
