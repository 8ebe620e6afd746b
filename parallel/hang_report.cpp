// describe_hang: which ranks are stuck and what the others wait in, in one line.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <tuple>
#include <utility>

#include "parallel/hang_watchdog.hpp"

namespace tessera {
namespace {

/// "rank 2", "ranks 0-1, 3": ranks in order, runs collapsed.
std::string rank_list(std::vector<int> ranks) {
  std::sort(ranks.begin(), ranks.end());
  std::string text;
  for (std::size_t i = 0; i < ranks.size();) {
    std::size_t j = i;
    while (j + 1 < ranks.size() && ranks[j + 1] == ranks[j] + 1) ++j;
    if (!text.empty()) text += ", ";
    text += j == i ? std::to_string(ranks[i]) : fmt::format("{}-{}", ranks[i], ranks[j]);
    i = j + 1;
  }
  return (ranks.size() == 1 ? "rank " : "ranks ") + text;
}

/// "in step 5, logging" after `prefix` ("last heard "), or that the watchdog knows nothing of it.
std::string activity(const RankProgress& rank, const std::string& prefix) {
  if (rank.never_heard) return "not heard from at all";
  if (rank.operation.empty()) return prefix + "before its first step";
  return prefix + fmt::format("in step {}, {}", rank.step, rank.operation);
}

/// " on node1, node2": the distinct known hosts of `ranks`, in rank order; "" when none is known.
std::string on_hosts(const std::vector<const RankProgress*>& ranks) {
  std::vector<std::string> hosts;
  for (const RankProgress* rank : ranks) {
    if (!rank->host.empty() && std::find(hosts.begin(), hosts.end(), rank->host) == hosts.end()) {
      hosts.push_back(rank->host);
    }
  }
  std::string text;
  for (const std::string& host : hosts) text += (text.empty() ? " on " : ", ") + host;
  return text;
}

/// "ranks 0-1, 3 in step 5, the loss all-reduce; rank 2 in step 5, logging": grouped by what
/// they do, in the order of each group's lowest rank; with `with_hosts`, each group's nodes too.
std::string grouped(const std::vector<const RankProgress*>& ranks, const std::string& prefix = "",
                    bool with_hosts = false) {
  std::map<std::tuple<bool, int64_t, std::string>, std::vector<const RankProgress*>> groups;
  for (const RankProgress* rank : ranks) {
    groups[{rank->never_heard, rank->step, rank->operation}].push_back(rank);
  }
  std::vector<std::pair<std::vector<int>, std::string>> lines;
  for (const auto& [what, group] : groups) {
    std::vector<int> members;
    for (const RankProgress* rank : group) members.push_back(rank->rank);
    lines.emplace_back(members, rank_list(members) + (with_hosts ? on_hosts(group) : "") + " " +
                                    activity(*group.front(), prefix));
  }
  std::sort(lines.begin(), lines.end(),
            [](const auto& a, const auto& b) { return a.first.front() < b.first.front(); });
  std::string text;
  for (const auto& line : lines) text += (text.empty() ? "" : "; ") + line.second;
  return text;
}

}  // namespace

std::string describe_hang(const std::vector<RankProgress>& ranks, double timeout_s,
                          double silent_after_s, const std::string& setting) {
  std::vector<const RankProgress*> silent, responsive;
  for (const RankProgress& rank : ranks) {
    (rank.silent_s > silent_after_s ? silent : responsive).push_back(&rank);
  }
  std::vector<const RankProgress*> stuck, waiting;
  std::string why, stuck_prefix;
  if (!silent.empty()) {
    stuck = silent;
    waiting = responsive;
    stuck_prefix = "last heard ";
    double longest = 0.0;
    for (const RankProgress* rank : silent) longest = std::max(longest, rank->silent_s);
    why = fmt::format("not responding for {:.0f} s (a stopped process, or its node is gone)",
                      longest);
  } else {
    // Every rank answers, so each is blocked in something: the ranks furthest behind hold up
    // the others, which went on to their next collective and wait there. (Idle times cannot
    // tell them apart: the waits begin within milliseconds of the stall.)
    int64_t fewest = ranks.front().marks;
    double longest = 0.0;
    for (const RankProgress& rank : ranks) {
      fewest = std::min(fewest, rank.marks);
      longest = std::max(longest, rank.idle_s);
    }
    for (const RankProgress& rank : ranks) {
      (rank.marks == fewest ? stuck : waiting).push_back(&rank);
    }
    why = fmt::format("no progress for {:.0f} s", longest);
  }
  std::string line =
      fmt::format("hang: no rank has made progress for {:.0f} s or more ({} = {:g}); stuck: {}, {}",
                  timeout_s, setting, timeout_s, grouped(stuck, stuck_prefix, true), why);
  if (!waiting.empty()) line += "; waiting for them: " + grouped(waiting);
  std::vector<int> stuck_ranks;
  for (const RankProgress* rank : stuck) stuck_ranks.push_back(rank->rank);
  const std::string hosts = on_hosts(stuck);
  line += fmt::format(". The job ends; look at {}, or raise {} if an operation can take longer",
                      hosts.empty() ? "the node of " + rank_list(stuck_ranks)
                                    : hosts.substr(4) + " (" + rank_list(stuck_ranks) + ")",
                      setting);
  return line;
}

}  // namespace tessera
