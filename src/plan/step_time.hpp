// Time plan: how long one optimizer step of a layout takes on a machine described by a hardware
// profile, by part, and what follows from it (tokens/s, MFU). A roofline-style model, no
// simulation of kernels:
//  - compute: the FLOPs of the slowest pipeline stage's share (its blocks, the head on the last;
//    recomputation's extra forward included) at the profile's achievable rate, plus a fixed
//    overhead per block and microbatch (kernel launches);
//  - tensor parallelism: 4 all-reduces (or all-gather + reduce-scatter pairs with sequence
//    parallelism, the same volume) of a microbatch's activations per block, on the intra-node
//    link, not overlapped;
//  - pipeline: the bubble (p - 1) / (v m) of the stage's busy time (Narayanan et al. 2021) and
//    the point-to-point sends on the critical path, 2 (p v - 1) of them;
//  - data parallelism: a ring all-reduce of the gradients (ZeRO-1: reduce-scatter + all-gather,
//    the same volume) on the intra- or inter-node link, whichever the group spans; overlapped
//    with the last microbatch's backward where tessera overlaps it (bucketed reduction: not
//    under ZeRO-1 or deterministic mode), the last bucket always exposed;
//  - the optimizer: AdamW streams about 36 bytes per parameter this rank updates.
#pragma once

#include "io/config/config.hpp"
#include "parallel/layout/training_layout.hpp"
#include "plan/hardware_profile.hpp"

namespace tessera {

/// One step's time by part, in seconds, and what it achieves.
struct StepTime {
  double compute_s = 0.0;
  double tp_comm_s = 0.0;
  double pipeline_bubble_s = 0.0;
  double pipeline_send_s = 0.0;
  double dp_comm_s = 0.0;  ///< exposed: what overlap leaves
  double optimizer_s = 0.0;
  double total_s = 0.0;
  double tokens_per_s = 0.0;
  /// Model FLOPs (model_flops_per_token, recomputation not counted) per second over the peak of
  /// every device of the job.
  double mfu = 0.0;
  // What the times are made of, for calibration (fitting the rates to measured times).
  double compute_flops = 0.0;    ///< FLOPs of a rank of the slowest stage, recomputation included
  double overhead_s = 0.0;       ///< the per-block overhead within compute_s
  double tp_link_bytes = 0.0;    ///< bytes a rank sends over the tensor-parallel link
  double tp_messages = 0.0;      ///< messages it sends (each costs the latency)
  double optimizer_bytes = 0.0;  ///< bytes the optimizer streams
};

/// The step time of `config` at `layout` on `profile`'s nodes (ranks fill nodes in order,
/// devices_per_node per node). Throws UsageError when the profile has no rate for the
/// configuration's precision.
StepTime plan_step_time(const Config& config, const TrainingLayout& layout,
                        const HardwareProfile& profile);

}  // namespace tessera
