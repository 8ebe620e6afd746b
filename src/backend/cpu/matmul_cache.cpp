// oneDNN matmul primitives of the CPU backend, built once per shape (see matmul_cache.hpp).
#include "backend/cpu/matmul_cache.hpp"

#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <unordered_map>

#include "core/error.hpp"

namespace tessera::cpu {
namespace {

using dnnl::memory;

/// A row-major [rows, columns] matrix with row stride `ld`, read transposed when trans is 'T'.
memory::desc operand(char trans, int rows, int columns, int ld, memory::data_type type) {
  const memory::dims strides = trans == 'T' ? memory::dims{1, ld} : memory::dims{ld, 1};
  return memory::desc({rows, columns}, type, strides);
}

std::string describe(const MatmulShape& s) {
  return "oneDNN " + std::string(s.bf16_operands ? "bf16 " : "") + "matmul(" +
         std::string(1, s.trans_a) + s.trans_b + ", m=" + std::to_string(s.m) +
         ", n=" + std::to_string(s.n) + ", k=" + std::to_string(s.k) + ")";
}

}  // namespace

LinearGemmShapes linear_gemm_shapes(int rows, int in_features, int out_features, bool bf16,
                                    bool with_bias) {
  LinearGemmShapes shapes;
  // out[rows, out] = in[rows, in] @ weight[out, in]^T
  shapes.forward = {.trans_a = 'N',
                    .trans_b = 'T',
                    .m = rows,
                    .n = out_features,
                    .k = in_features,
                    .lda = in_features,
                    .ldb = in_features,
                    .ldc = out_features,
                    .bf16_operands = bf16,
                    .with_bias = with_bias};
  // d_in[rows, in] = d_out[rows, out] @ weight[out, in]
  shapes.input_gradient = {.trans_a = 'N',
                           .trans_b = 'N',
                           .m = rows,
                           .n = in_features,
                           .k = out_features,
                           .lda = out_features,
                           .ldb = in_features,
                           .ldc = in_features,
                           .bf16_operands = bf16};
  // d_weight[out, in] += d_out[rows, out]^T @ in[rows, in]
  shapes.weight_gradient = {.trans_a = 'T',
                            .trans_b = 'N',
                            .m = out_features,
                            .n = in_features,
                            .k = rows,
                            .lda = out_features,
                            .ldb = in_features,
                            .ldc = in_features,
                            .beta = 1.0f,
                            .bf16_operands = bf16};
  return shapes;
}

struct MatmulCache::Engine {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
};

struct MatmulCache::Primitive {
  memory::desc a, b, c, bias;
  dnnl::matmul matmul;
  std::string implementation;
};

MatmulCache::MatmulCache() : engine_(std::make_unique<Engine>()) {}
MatmulCache::~MatmulCache() = default;

const MatmulCache::Primitive& MatmulCache::primitive(const MatmulShape& shape) {
  auto found = primitives_.find(shape);
  if (found != primitives_.end()) return *found->second;
  const memory::data_type operands =
      shape.bf16_operands ? memory::data_type::bf16 : memory::data_type::f32;
  auto primitive = std::make_unique<Primitive>();
  primitive->a = operand(shape.trans_a, shape.m, shape.k, shape.lda, operands);
  primitive->b = operand(shape.trans_b, shape.k, shape.n, shape.ldb, operands);
  primitive->c = memory::desc({shape.m, shape.n}, memory::data_type::f32, {shape.ldc, 1});
  if (shape.with_bias) {
    primitive->bias = memory::desc({1, shape.n}, memory::data_type::f32, {shape.n, 1});
  }
  dnnl::primitive_attr attributes;
  if (shape.beta != 0.0f) {
    dnnl::post_ops accumulate;  // beta C is a "sum" post-op: C is read before it is written
    accumulate.append_sum(shape.beta);
    attributes.set_post_ops(accumulate);
  }
  try {
    const dnnl::matmul::primitive_desc description(
        shape.with_bias
            ? dnnl::matmul::desc(primitive->a, primitive->b, primitive->bias, primitive->c)
            : dnnl::matmul::desc(primitive->a, primitive->b, primitive->c),
        attributes, engine_->engine);
    primitive->matmul = dnnl::matmul(description);
    primitive->implementation = description.impl_info_str();
  } catch (const dnnl::error& error) {
    throw InternalError(describe(shape) + " could not be built: " + error.what());
  }
  return *primitives_.emplace(shape, std::move(primitive)).first->second;
}

std::string MatmulCache::implementation(const MatmulShape& shape) {
  return primitive(shape).implementation;
}

void MatmulCache::run(const MatmulShape& shape, const void* a, const void* b, float* c,
                      const float* bias) {
  const Primitive& p = primitive(shape);
  TESSERA_CHECK(shape.with_bias == (bias != nullptr),
                describe(shape) + ": a bias must be passed exactly when the shape has one");
  const memory a_memory(p.a, engine_->engine, const_cast<void*>(a));
  const memory b_memory(p.b, engine_->engine, const_cast<void*>(b));
  const memory c_memory(p.c, engine_->engine, c);
  std::unordered_map<int, memory> arguments{
      {DNNL_ARG_SRC, a_memory}, {DNNL_ARG_WEIGHTS, b_memory}, {DNNL_ARG_DST, c_memory}};
  if (bias != nullptr) {
    arguments.emplace(DNNL_ARG_BIAS, memory(p.bias, engine_->engine, const_cast<float*>(bias)));
  }
  try {
    p.matmul.execute(engine_->stream, arguments);
    engine_->stream.wait();
  } catch (const dnnl::error& error) {
    throw InternalError(describe(shape) + " failed: " + error.what());
  }
}

}  // namespace tessera::cpu
