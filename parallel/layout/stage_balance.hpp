// Which transformer blocks each virtual pipeline stage computes: balanced by cost, or as
// parallel.stage_layers says. Part of the layout module (training_layout.hpp).
#pragma once

#include <vector>

#include "io/config/config.hpp"

namespace tessera {

/// Boundaries of `virtual_stages` contiguous groups of blocks: group k holds blocks
/// [bounds[k], bounds[k + 1]). Every group gets at least one block, and the split minimises the
/// cost of the most expensive group, counting the embedding with the first group and the final
/// norm, head and loss with the last (the head's vocab x d GEMM can cost several blocks).
std::vector<int> balance_stages(const ModelConfig& model, int virtual_stages);

/// The boundaries to use: parallel.stage_layers when given ("3,3,2": blocks per virtual stage,
/// in order), else balance_stages. Throws UsageError when the override does not have one
/// positive count per virtual stage summing to n_layers.
std::vector<int> stage_bounds(const ModelConfig& model, const ParallelConfig& parallel,
                              int virtual_stages);

/// FLOPs of one token through one block, and through the head, forward only.
double block_cost(const ModelConfig& model);
double head_cost(const ModelConfig& model);

/// Model FLOPs per trained token, forward and backward (three times forward): 6 * (parameters
/// used in matrix products, the head included) + 12 * n_layers * d_model * seq for attention
/// (PaLM, app. B). Recomputation is not counted: the figure MFU is quoted in.
double model_flops_per_token(const ModelConfig& model);

}  // namespace tessera
