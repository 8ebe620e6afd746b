// oneDNN matmul primitives of the CPU backend, built once per shape (see matmul_cache.hpp).
#include "backend/cpu/matmul_cache.hpp"

#include <oneapi/dnnl/dnnl.hpp>
#include <string>

#include "core/error.hpp"

namespace tessera::cpu {
namespace {

using dnnl::memory;

/// A row-major [rows, columns] matrix with row stride `ld`, read transposed when trans is 'T'.
memory::desc operand(char trans, int rows, int columns, int ld) {
  const memory::dims strides = trans == 'T' ? memory::dims{1, ld} : memory::dims{ld, 1};
  return memory::desc({rows, columns}, memory::data_type::f32, strides);
}

std::string describe(const MatmulShape& s) {
  return "oneDNN matmul(" + std::string(1, s.trans_a) + s.trans_b + ", m=" + std::to_string(s.m) +
         ", n=" + std::to_string(s.n) + ", k=" + std::to_string(s.k) + ")";
}

}  // namespace

struct MatmulCache::Engine {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
};

struct MatmulCache::Primitive {
  memory::desc a, b, c;
  dnnl::matmul matmul;
};

MatmulCache::MatmulCache() : engine_(std::make_unique<Engine>()) {}
MatmulCache::~MatmulCache() = default;

void MatmulCache::run(const MatmulShape& shape, const float* a, const float* b, float* c) {
  auto found = primitives_.find(shape);
  if (found == primitives_.end()) {
    auto primitive = std::make_unique<Primitive>();
    primitive->a = operand(shape.trans_a, shape.m, shape.k, shape.lda);
    primitive->b = operand(shape.trans_b, shape.k, shape.n, shape.ldb);
    primitive->c = memory::desc({shape.m, shape.n}, memory::data_type::f32, {shape.ldc, 1});
    dnnl::primitive_attr attributes;
    if (shape.beta != 0.0f) {
      dnnl::post_ops accumulate;  // beta C is a "sum" post-op: C is read before it is written
      accumulate.append_sum(shape.beta);
      attributes.set_post_ops(accumulate);
    }
    try {
      const dnnl::matmul::primitive_desc description(
          dnnl::matmul::desc(primitive->a, primitive->b, primitive->c), attributes,
          engine_->engine);
      primitive->matmul = dnnl::matmul(description);
    } catch (const dnnl::error& error) {
      throw InternalError(describe(shape) + " could not be built: " + error.what());
    }
    found = primitives_.emplace(shape, std::move(primitive)).first;
  }
  const Primitive& p = *found->second;
  const memory a_memory(p.a, engine_->engine, const_cast<float*>(a));
  const memory b_memory(p.b, engine_->engine, const_cast<float*>(b));
  const memory c_memory(p.c, engine_->engine, c);
  try {
    p.matmul.execute(
        engine_->stream,
        {{DNNL_ARG_SRC, a_memory}, {DNNL_ARG_WEIGHTS, b_memory}, {DNNL_ARG_DST, c_memory}});
    engine_->stream.wait();
  } catch (const dnnl::error& error) {
    throw InternalError(describe(shape) + " failed: " + error.what());
  }
}

}  // namespace tessera::cpu
