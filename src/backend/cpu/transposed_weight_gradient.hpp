// Private to src/backend/cpu: the weight gradient of a linear layer much wider than its input
// (the vocabulary head), computed as its transpose.
//
// d_weight[out, in] += d_out^T in has a transposed A whose long side is the layer's width; for
// the bench-cpu head (8192 x 384, 1024 rows) it runs at 73 GFLOP/s through dnnl_sgemm and the
// matmul primitive alike. Its transpose, in^T d_out, runs at 108, and adding that transposed
// into d_weight costs 4.7 ms, 100 GFLOP/s together. At the MLP's ratio of 4 the two are even
// (bench/bench_step_gemms measures every path). The choice is fixed per shape, never timed, so
// results stay bitwise reproducible.
#pragma once

namespace tessera::cpu {

/// Whether linear_backward computes the weight gradient of this shape transposed.
bool weight_gradient_goes_transposed(int in_features, int out_features);

/// destination[columns, rows] += source[rows, columns]^T, over the OpenMP threads.
void add_transposed(float* destination, const float* source, int rows, int columns);

}  // namespace tessera::cpu
