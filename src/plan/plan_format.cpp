// format_plan (allocation_plan.hpp): the plan as a terminal table, Markdown, CSV or JSON.
#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.hpp"
#include "plan/allocation_plan.hpp"

namespace tessera {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

std::string schedule_text(const TrainingLayout& layout) {
  if (layout.shape.pp == 1) return "-";
  switch (layout.schedule) {
    case PipelineScheduleKind::gpipe:
      return "gpipe";
    case PipelineScheduleKind::interleaved:
      return fmt::format("interleaved x{}", layout.chunks_per_stage);
    case PipelineScheduleKind::one_f_one_b:
      break;
  }
  return "1f1b";
}

const char* recompute_text(Recompute recompute) {
  switch (recompute) {
    case Recompute::selective:
      return "selective";
    case Recompute::full:
      return "full";
    case Recompute::none:
      break;
  }
  return "none";
}

/// The cells of one row, in the order of kColumns.
std::vector<std::string> cells(const PlannedLayout& row) {
  const TrainingLayout& layout = row.candidate.layout;
  const Config& config = row.candidate.config;
  const MemoryPart largest = row.memory.largest();
  return {fmt::format("{}x{}x{}", layout.shape.dp, layout.shape.tp, layout.shape.pp),
          schedule_text(layout),
          fmt::format("{}x{}", layout.micro_batch, layout.micro_batches),
          recompute_text(config.train.recompute),
          config.parallel.zero == 1 ? "yes" : "no",
          fmt::format("{:.2f}", static_cast<double>(row.memory.total()) / kGiB),
          fmt::format("{} {:.2f}", largest.name, static_cast<double>(largest.bytes) / kGiB),
          fmt::format("{:.3g}", row.time.total_s),
          fmt::format("{:.0f}", row.time.tokens_per_s),
          fmt::format("{:.1f}%", 100.0 * row.time.mfu),
          fmt::format("{:.3g}", row.days),
          fmt::format("{:.4g}", row.node_hours),
          fmt::format("{:.4g}", row.device_hours)};
}

const std::vector<std::string> kColumns = {"dp x tp x pp",
                                           "schedule",
                                           "micro-batch x accumulation",
                                           "recompute",
                                           "ZeRO-1",
                                           "GiB/device",
                                           "largest part (GiB)",
                                           "step s",
                                           "tokens/s",
                                           "MFU",
                                           "days",
                                           "node-hours",
                                           "device-hours"};

std::string text_table(const std::vector<PlannedLayout>& rows, int top) {
  std::vector<std::vector<std::string>> table{kColumns};
  for (std::size_t i = 0; i < rows.size() && static_cast<int>(i) < top; ++i) {
    table.push_back(cells(rows[i]));
  }
  std::vector<std::size_t> widths(kColumns.size(), 0);
  for (const auto& line : table) {
    for (std::size_t c = 0; c < line.size(); ++c) widths[c] = std::max(widths[c], line[c].size());
  }
  std::string out;
  for (const auto& line : table) {
    for (std::size_t c = 0; c < line.size(); ++c)
      out += fmt::format("{:<{}}  ", line[c], widths[c]);
    out.back() = '\n';
  }
  return out;
}

std::string markdown_table(const std::vector<PlannedLayout>& rows, int top) {
  std::string out = "| " + fmt::format("{}", fmt::join(kColumns, " | ")) + " |\n|";
  for (std::size_t c = 0; c < kColumns.size(); ++c) out += "---|";
  out += "\n";
  for (std::size_t i = 0; i < rows.size() && static_cast<int>(i) < top; ++i) {
    out += "| " + fmt::format("{}", fmt::join(cells(rows[i]), " | ")) + " |\n";
  }
  return out;
}

std::string summary(const AllocationPlan& plan) {
  return fmt::format(
      "{:.3g} parameters on {} node(s) x {} devices of {} ({} ranks); {:.3g} tokens{}; {} layouts "
      "fit, {} do not",
      plan.parameters, plan.nodes, plan.devices / plan.nodes, plan.hardware, plan.devices,
      plan.tokens, plan.tokens_chosen ? "" : " (20 per parameter)", plan.fit.size(),
      plan.too_big.size());
}

nlohmann::json row_json(const PlannedLayout& row) {
  const TrainingLayout& layout = row.candidate.layout;
  const Config& config = row.candidate.config;
  nlohmann::json memory = nlohmann::json::object();
  for (const MemoryPart& part : row.memory.parts()) memory[part.name] = part.bytes;
  memory["total"] = row.memory.total();
  return {{"dp", layout.shape.dp},
          {"tp", layout.shape.tp},
          {"pp", layout.shape.pp},
          {"schedule", schedule_text(layout)},
          {"chunks_per_stage", layout.chunks_per_stage},
          {"micro_batch", layout.micro_batch},
          {"accumulation", layout.micro_batches},
          {"recompute", recompute_text(config.train.recompute)},
          {"zero", config.parallel.zero},
          {"sequence_parallel", layout.sequence_parallel && layout.shape.tp > 1},
          {"fits", row.fits},
          {"memory_bytes", memory},
          {"step_s",
           {{"compute", row.time.compute_s},
            {"tp_comm", row.time.tp_comm_s},
            {"pipeline_bubble", row.time.pipeline_bubble_s},
            {"pipeline_send", row.time.pipeline_send_s},
            {"dp_comm", row.time.dp_comm_s},
            {"optimizer", row.time.optimizer_s},
            {"total", row.time.total_s}}},
          {"tokens_per_s", row.time.tokens_per_s},
          {"mfu", row.time.mfu},
          {"days", row.days},
          {"node_hours", row.node_hours},
          {"device_hours", row.device_hours}};
}

std::string json_text(const AllocationPlan& plan) {
  nlohmann::json layouts = nlohmann::json::array();
  for (const auto* list : {&plan.fit, &plan.too_big}) {
    for (const PlannedLayout& row : *list) layouts.push_back(row_json(row));
  }
  const nlohmann::json out = {{"hardware", plan.hardware}, {"nodes", plan.nodes},
                              {"devices", plan.devices},   {"parameters", plan.parameters},
                              {"tokens", plan.tokens},     {"layouts", layouts}};
  return out.dump(2) + "\n";
}

std::string csv_text(const AllocationPlan& plan) {
  std::string out =
      "dp,tp,pp,schedule,chunks_per_stage,micro_batch,accumulation,recompute,zero,"
      "sequence_parallel,fits,memory_bytes,largest_part,largest_part_bytes,step_s,compute_s,"
      "tp_comm_s,pipeline_bubble_s,pipeline_send_s,dp_comm_s,optimizer_s,tokens_per_s,mfu,days,"
      "node_hours,device_hours\n";
  for (const auto* list : {&plan.fit, &plan.too_big}) {
    for (const PlannedLayout& row : *list) {
      const TrainingLayout& layout = row.candidate.layout;
      const Config& config = row.candidate.config;
      const MemoryPart largest = row.memory.largest();
      const StepTime& t = row.time;
      out += fmt::format("{},{},{},{},{},{},{},{},{},{},{},", layout.shape.dp, layout.shape.tp,
                         layout.shape.pp, schedule_text(layout), layout.chunks_per_stage,
                         layout.micro_batch, layout.micro_batches,
                         recompute_text(config.train.recompute), config.parallel.zero,
                         layout.sequence_parallel && layout.shape.tp > 1, row.fits);
      out += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", row.memory.total(),
                         largest.name, largest.bytes, t.total_s, t.compute_s, t.tp_comm_s,
                         t.pipeline_bubble_s, t.pipeline_send_s, t.dp_comm_s, t.optimizer_s,
                         t.tokens_per_s, t.mfu, row.days, row.node_hours, row.device_hours);
    }
  }
  return out;
}

}  // namespace

std::string format_plan(const AllocationPlan& plan, const std::string& format, int top) {
  if (format == "json") return json_text(plan);
  if (format == "csv") return csv_text(plan);
  const bool markdown = format == "md";
  if (!markdown && format != "table") {
    throw UsageError("--format " + format + " is not one of table, md, csv, json");
  }
  auto table = markdown ? markdown_table : text_table;
  std::string out = fmt::format("{}{}\n\n", markdown ? "" : "tessera plan: ", summary(plan));
  if (plan.fit.empty()) {
    out += "No layout fits in the devices' memory; the fastest that do not, and what they need:\n";
  } else {
    out += fmt::format("The {} fastest layouts that fit, by tokens/s:\n\n",
                       std::min<std::size_t>(top, plan.fit.size()));
    out += table(plan.fit, top);
    if (!plan.too_big.empty())
      out += "\nThe fastest that do not fit, and the part that overflows:\n";
  }
  if (!plan.too_big.empty()) {
    out += '\n';  // apart from the table: GCC 12 warns (-Wrestrict) on "\n" + string
    out += table(plan.too_big, top);
  }
  return out;
}

}  // namespace tessera
