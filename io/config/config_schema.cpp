// The table of configuration keys. Each entry binds a name to a Config field through member
// pointers, so the setter, getter, type and default all come from the field itself.
#include "io/config/config_schema.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <type_traits>

#include "core/error.hpp"

namespace tessera::config_detail {
namespace {

template <class E>
struct EnumNames;
template <>
struct EnumNames<ModelFamily> {
  static constexpr std::array<std::string_view, 2> names{"gpt2", "openlm"};
};
template <>
struct EnumNames<NormKind> {
  static constexpr std::array<std::string_view, 2> names{"layernorm", "rmsnorm"};
};
template <>
struct EnumNames<LrSchedule> {
  static constexpr std::array<std::string_view, 2> names{"cosine", "constant"};
};

template <>
struct EnumNames<BackendKind> {
  static constexpr std::array<std::string_view, 3> names{"cpu", "cuda", "kokkos"};
};
template <>
struct EnumNames<Precision> {
  static constexpr std::array<std::string_view, 2> names{"fp32", "bf16"};
};
template <>
struct EnumNames<DataVerify> {
  static constexpr std::array<std::string_view, 2> names{"open", "off"};
};
template <>
struct EnumNames<Recompute> {
  static constexpr std::array<std::string_view, 3> names{"none", "selective", "full"};
};
template <>
struct EnumNames<PipelineScheduleKind> {
  static constexpr std::array<std::string_view, 3> names{"1f1b", "gpipe", "interleaved"};
};

KeySpec may_be_empty(KeySpec key) {
  key.may_be_empty = true;
  return key;
}

/// An integer key that also takes `word` for 0, e.g. parallel.dp = "auto".
KeySpec or_word(std::string_view word, KeySpec key) {
  key.zero_word = word;
  return key;
}

Range at_least(double lo) { return Range{.lo = lo}; }
Range positive() { return Range{.lo = 0, .lo_inclusive = false}; }
Range fraction() { return Range{.lo = 0, .hi = 1, .hi_inclusive = false}; }  // [0, 1)

/// A key bound to `(config.*section).*field`; kind, limits and choices follow from Field.
template <class Section, class Field>
KeySpec entry(std::string_view name, Section Config::*section, Field Section::*field,
              std::string_view description) {
  KeySpec key;
  key.name = name;
  key.description = description;
  auto ref = [section, field](Config& c) -> Field& { return (c.*section).*field; };
  auto cref = [section, field](const Config& c) -> const Field& { return (c.*section).*field; };
  if constexpr (std::is_same_v<Field, bool>) {
    key.kind = ValueKind::boolean;
    key.store = [ref](Config& c, const Value& v) { ref(c) = std::get<bool>(v); };
    key.load = [cref](const Config& c) -> Value { return cref(c); };
  } else if constexpr (std::is_enum_v<Field>) {
    constexpr auto& names = EnumNames<Field>::names;
    key.kind = ValueKind::text;
    key.choices.assign(names.begin(), names.end());
    key.store = [ref](Config& c, const Value& v) {
      auto it = std::find(names.begin(), names.end(), std::get<std::string>(v));
      ref(c) = static_cast<Field>(it - names.begin());
    };
    key.load = [cref](const Config& c) -> Value {
      return std::string(names.at(static_cast<size_t>(cref(c))));
    };
  } else if constexpr (std::is_same_v<Field, std::string> ||
                       std::is_same_v<Field, std::filesystem::path>) {
    key.kind = ValueKind::text;
    key.store = [ref](Config& c, const Value& v) { ref(c) = Field(std::get<std::string>(v)); };
    key.load = [cref](const Config& c) -> Value { return std::string(cref(c)); };
  } else if constexpr (std::is_integral_v<Field>) {
    key.kind = ValueKind::integer;
    key.integer_max = static_cast<int64_t>(
        std::min<uint64_t>(std::numeric_limits<Field>::max(), std::numeric_limits<int64_t>::max()));
    key.store = [ref](Config& c, const Value& v) {
      ref(c) = static_cast<Field>(std::get<int64_t>(v));
    };
    key.load = [cref](const Config& c) -> Value { return static_cast<int64_t>(cref(c)); };
  } else {
    static_assert(std::is_floating_point_v<Field>, "unsupported configuration field type");
    key.kind = ValueKind::real;
    key.single_precision = std::is_same_v<Field, float>;
    key.store = [ref](Config& c, const Value& v) {
      ref(c) = static_cast<Field>(std::get<double>(v));
    };
    key.load = [cref](const Config& c) -> Value { return static_cast<double>(cref(c)); };
  }
  return key;
}

/// A numeric key limited to `range` (and to what its field type can hold).
template <class Section, class Field>
KeySpec entry(std::string_view name, Section Config::*section, Field Section::*field, Range range,
              std::string_view description) {
  KeySpec key = entry(name, section, field, description);
  key.range = range;
  return key;
}

/// A string key that must be one of `choices`.
template <class Section>
KeySpec entry(std::string_view name, Section Config::*section, std::string Section::*field,
              std::vector<std::string_view> choices, std::string_view description) {
  KeySpec key = entry(name, section, field, description);
  key.choices = std::move(choices);
  return key;
}

std::vector<KeySpec> build_schema() {
  using C = Config;
  using M = ModelConfig;
  using T = TrainConfig;
  return {
      entry("run.dir", &C::run, &RunConfig::dir,
            "directory of the run: checkpoints, metrics.jsonl and the resolved config.toml; one "
            "run at a time (a second one is refused while the first holds its .lock)"),
      entry("run.deadline", &C::run, &RunConfig::deadline, at_least(0),
            "end of the job as UNIX seconds; 0 asks Slurm (SLURM_JOB_END_TIME, else squeue); "
            "the run saves and exits with status 75 before another step would pass it"),
      entry("run.stop_margin_s", &C::run, &RunConfig::stop_margin_s, at_least(0),
            "seconds kept free before the job's end, on top of the longest step and "
            "checkpoint"),

      entry("model.family", &C::model, &M::family,
            "gpt2 (learned positions, GELU, tied embeddings, biases) or openlm (rotary, SwiGLU)"),
      entry("model.n_layers", &C::model, &M::n_layers, at_least(1), "transformer blocks"),
      entry("model.d_model", &C::model, &M::d_model, at_least(1), "width of the residual stream"),
      entry("model.n_heads", &C::model, &M::n_heads, at_least(1),
            "attention heads; must divide d_model (openlm: d_model / n_heads even)"),
      entry("model.seq_len", &C::model, &M::seq_len, at_least(1),
            "tokens per training sequence (context length)"),
      entry("model.vocab_size", &C::model, &M::vocab_size, at_least(2),
            "rows of the embedding table; at least the tokenizer's vocabulary, ideally padded "
            "to a multiple of 64"),
      entry("model.ffn_hidden", &C::model, &M::ffn_hidden, at_least(0),
            "MLP hidden width; 0 derives 4*d_model (gpt2) or 256*ceil(8*d_model/3/256) (openlm)"),
      entry("model.norm", &C::model, &M::norm, "normalisation layer: layernorm or rmsnorm"),
      entry("model.norm_eps", &C::model, &M::norm_eps, positive(),
            "epsilon added to the variance inside the norm"),
      entry("model.rotary_base", &C::model, &M::rotary_base, positive(),
            "base of the rotary embedding frequencies (openlm only)"),
      entry("model.z_loss", &C::model, &M::z_loss, at_least(0),
            "coefficient of the z-loss term lse^2 added to the loss; 0 disables it"),
      entry("model.init_std", &C::model, &M::init_std, positive(),
            "standard deviation of the normal weight initialisation"),

      entry("train.steps", &C::train, &T::steps, at_least(1), "optimizer steps in the whole run"),
      entry("train.seed", &C::train, &T::seed, at_least(0), "seed of the weight initialisation"),
      entry("train.global_batch", &C::train, &T::global_batch, at_least(1),
            "sequences per optimizer step over all ranks; a multiple of micro_batch"),
      entry("train.micro_batch", &C::train, &T::micro_batch, at_least(1),
            "sequences per forward/backward pass per rank; gradients accumulate up to "
            "global_batch"),
      entry("train.lr", &C::train, &T::lr, positive(), "peak learning rate, reached after warm-up"),
      entry("train.min_lr", &C::train, &T::min_lr, at_least(0),
            "learning rate at the end of the cosine decay; at most lr"),
      entry("train.warmup_steps", &C::train, &T::warmup_steps, at_least(0),
            "steps of linear warm-up from 0 to lr; at most steps"),
      entry("train.lr_schedule", &C::train, &T::lr_schedule,
            "after warm-up: cosine (decays to min_lr at the last step) or constant"),
      entry("train.weight_decay", &C::train, &T::weight_decay, at_least(0),
            "AdamW decoupled weight decay"),
      entry("train.beta1", &C::train, &T::beta1, fraction(), "AdamW first-moment decay"),
      entry("train.beta2", &C::train, &T::beta2, fraction(), "AdamW second-moment decay"),
      entry("train.adam_eps", &C::train, &T::adam_eps, positive(),
            "AdamW epsilon added to the root of the second moment"),
      entry("train.grad_clip", &C::train, &T::grad_clip, at_least(0),
            "limit of the global L2 norm of the gradients; 0 disables clipping"),
      entry("train.backend", &C::train, &T::backend,
            "where the step computes: cpu; cuda (one GPU per rank, NCCL between them; needs a "
            "build with -DTESSERA_CUDA=ON); or kokkos (the device of the Kokkos build, fp32; "
            "needs a build with -DTESSERA_KOKKOS=ON, doc/kokkos.md)"),
      entry("train.precision", &C::train, &T::precision,
            "what the matrix products compute in: fp32, or bf16 (operands rounded to bf16, "
            "fp32 accumulation, like PyTorch's autocast; on the cpu the linear layers only, and "
            "it needs AVX-512, fast with AMX or AVX512-BF16). Weights, optimizer state, norms, "
            "softmax and the loss "
            "stay fp32"),
      entry("train.recompute", &C::train, &T::recompute,
            "activation recomputation: none; selective (the attention probabilities, recomputed "
            "in backward); full (each block re-run from its input in backward). Same results, "
            "less activation memory"),
      entry("train.stop_after", &C::train, &TrainConfig::stop_after, at_least(0),
            "end cleanly with a checkpoint once step N is done (0: run all steps); changes "
            "nothing else about the run"),
      entry("train.max_bad_steps", &C::train, &T::max_bad_steps, at_least(1),
            "a step with a non-finite loss or gradient norm is skipped (the weights stay); this "
            "many in a row end the run with exit status 3, its earlier checkpoints kept"),
      entry("train.hang_timeout_s", &C::train, &T::hang_timeout_s, at_least(0),
            "when no rank has made progress for this many seconds (a rank stopped or stuck, the "
            "others waiting for it), the job ends with exit status 4 and a line naming the stuck "
            "ranks and what every rank was doing; 0 turns the watchdog off. Above the longest "
            "single operation (a step's forward or backward, a checkpoint write)"),
      entry("train.decay_norms_and_biases", &C::train, &T::decay_norms_and_biases,
            "apply weight decay to norm gains and biases too"),
      entry("train.decay_embeddings", &C::train, &T::decay_embeddings,
            "apply weight decay to the embedding tables too"),

      entry("data.source", &C::data, &DataConfig::source,
            "\"synthetic\" (built-in Markov source) or a directory written by tessera prepare"),
      may_be_empty(
          entry("data.sources", &C::data, &DataConfig::sources,
                "several directories written by tessera prepare, mixed by data.weights, e.g. "
                "\"data/web,data/books\" (all with one tokenizer); empty uses data.source")),
      may_be_empty(entry("data.weights", &C::data, &DataConfig::weights,
                         "the share of samples drawn from each of data.sources, e.g. "
                         "\"0.7,0.3\" (normalised to sum 1); empty: in proportion to their "
                         "training tokens")),
      entry("data.tokenizer", &C::data, &DataConfig::tokenizer,
            "tokenizer of prepared data: byte, sentencepiece, or hf:PATH/tokenizer.json (a "
            "Hugging Face tokenizer, which must be the file the data was prepared with; hf "
            "alone takes the copy the dataset keeps)"),
      entry("data.seed", &C::data, &DataConfig::seed, at_least(0),
            "seed of the synthetic source and of the sample order"),
      entry("data.verify", &C::data, &DataConfig::verify,
            "check every token shard's payload checksum before the first step (open), the work "
            "split over the ranks, or not at all (off: for data verified another way)"),

      entry("eval.every", &C::eval, &EvalConfig::every, at_least(0),
            "evaluate every N steps and at the end; 0 disables evaluation"),
      entry("eval.batches", &C::eval, &EvalConfig::batches, at_least(1),
            "validation microbatches per evaluation"),

      entry("log.every", &C::log, &LogConfig::every, at_least(1),
            "console and metrics.jsonl line every N steps"),
      entry("log.peak_tflops", &C::log, &LogConfig::peak_tflops, positive(),
            "peak FLOP/s of one rank in TFLOP/s, the denominator of MFU"),
      entry("log.progress", &C::log, &LogConfig::progress, {"auto", "bar", "plain"},
            "console progress: bar, plain lines, or auto (bar on a terminal, else plain)"),

      may_be_empty(entry("checkpoint.dir", &C::checkpoint, &CheckpointConfig::dir,
                         "directory of the checkpoints; empty means <run.dir>/checkpoints; a run "
                         "finding one there resumes from it")),
      entry("checkpoint.every", &C::checkpoint, &CheckpointConfig::every, at_least(0),
            "save every N steps as well as at the end; 0 saves only at the end"),
      entry("checkpoint.every_minutes", &C::checkpoint, &CheckpointConfig::every_minutes,
            at_least(0),
            "also save once this much wall time has passed since the last save; 0 "
            "disables it"),
      entry("checkpoint.async", &C::checkpoint, &CheckpointConfig::async,
            "copy the state at the step boundary and write it from a background thread while "
            "training goes on"),
      entry("checkpoint.keep", &C::checkpoint, &CheckpointConfig::keep, at_least(1),
            "checkpoints kept; older ones are deleted once a newer one is complete"),
      entry("checkpoint.at_end", &C::checkpoint, &CheckpointConfig::at_end,
            "save after the last step; false for timing runs that need no checkpoint (a stop on "
            "a signal or the time limit still saves)"),

      entry("parallel.tp", &C::parallel, &ParallelConfig::tp, at_least(1),
            "tensor-parallel ranks: split attention heads, MLP width and vocabulary"),
      entry("parallel.pp", &C::parallel, &ParallelConfig::pp, at_least(1),
            "pipeline stages: split the layers"),
      or_word("auto",
              entry("parallel.dp", &C::parallel, &ParallelConfig::dp, at_least(0),
                    "data-parallel replicas; \"auto\" (or 0) derives it from the job's rank "
                    "count / (tp x pp), keeping train.global_batch on any number of nodes")),
      entry("parallel.order", &C::parallel, &ParallelConfig::order,
            "axis order, fastest-varying first; tp first keeps tensor-parallel groups in a node"),
      entry("parallel.schedule", &C::parallel, &ParallelConfig::schedule,
            "pipeline schedule: 1f1b, gpipe, or interleaved (1F1B with virtual stages)"),
      entry("parallel.chunks_per_stage", &C::parallel, &ParallelConfig::chunks_per_stage,
            at_least(1), "virtual pipeline stages per rank (interleaved schedule)"),
      may_be_empty(entry("parallel.stage_layers", &C::parallel, &ParallelConfig::stage_layers,
                         "blocks per (virtual) pipeline stage, e.g. \"3,3,2\"; empty "
                         "balances them by cost")),
      entry("parallel.zero", &C::parallel, &ParallelConfig::zero, Range{.lo = 0, .hi = 1},
            "1 shards the AdamW state over data-parallel ranks (ZeRO stage 1); 0 replicates it"),
      entry("parallel.deterministic", &C::parallel, &ParallelConfig::deterministic,
            "sum gradients in a fixed order: dp = k is bitwise equal to dp = 1 with k-fold "
            "accumulation"),
      entry("parallel.bucket_mb", &C::parallel, &ParallelConfig::bucket_mb, positive(),
            "size of a data-parallel gradient bucket, MiB"),
      entry("parallel.sequence_parallel", &C::parallel, &ParallelConfig::sequence_parallel,
            "with tp > 1, split the residual stream and norms by rows over the tensor-parallel "
            "group (Megatron sequence parallelism); needs micro_batch * seq_len divisible by tp"),

      entry("debug.nan_gradients_from", &C::debug, &DebugConfig::nan_gradients_from, at_least(0),
            "for tests: from this step on (0: never) the gradients are made NaN after backward"),
      entry("debug.nan_gradient_steps", &C::debug, &DebugConfig::nan_gradient_steps, at_least(1),
            "for tests: how many steps from debug.nan_gradients_from get NaN gradients"),
      entry("debug.stall_at_step", &C::debug, &DebugConfig::stall_at_step, at_least(0),
            "for tests: at the start of this step (0: never) rank debug.stall_rank stops making "
            "progress, alive, until the hang watchdog ends the job; needs train.hang_timeout_s"),
      entry("debug.stall_rank", &C::debug, &DebugConfig::stall_rank, at_least(0),
            "for tests: the rank that debug.stall_at_step stalls"),
      entry("debug.snapshot_delay_ms", &C::debug, &DebugConfig::snapshot_delay_ms, at_least(0),
            "for tests: with checkpoint.async, the writer thread waits this long before it takes "
            "the snapshot that the next optimizer update waits for"),
  };
}

template <class Float>
std::string shortest(Float x) {
  std::array<char, 64> buffer{};
  auto [end, ec] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), x);
  TESSERA_CHECK(ec == std::errc{}, "to_chars failed");
  std::string text(buffer.data(), end);
  // "1e-04" -> "1e-4": TOML reads both; people write the second.
  if (size_t e = text.find('e'); e != std::string::npos) {
    size_t digits = e + 1 + (text[e + 1] == '-' || text[e + 1] == '+');
    while (digits + 1 < text.size() && text[digits] == '0') text.erase(digits, 1);
  }
  // TOML needs a '.' or an exponent to read the number back as a float.
  if (std::isfinite(x) && text.find_first_of(".e") == std::string::npos) text += ".0";
  return text;
}

std::string quote(const std::string& text) {
  std::string out = "\"";
  for (char ch : text) {
    auto byte = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (byte < 0x20 || byte == 0x7f) {
      std::array<char, 8> escaped{};
      std::snprintf(escaped.data(), escaped.size(), "\\u%04x", byte);
      out += escaped.data();
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

}  // namespace

bool Range::contains(double x) const {
  bool above = lo_inclusive ? x >= lo : x > lo;
  bool below = hi_inclusive ? x <= hi : x < hi;
  return above && below;
}

std::string Range::describe() const {
  std::string low = lo_inclusive ? ">= " : "> ";
  std::string lo_text = shortest(lo), hi_text = shortest(hi);
  if (lo_text.ends_with(".0")) lo_text.resize(lo_text.size() - 2);
  if (hi_text.ends_with(".0")) hi_text.resize(hi_text.size() - 2);
  bool has_lo = std::isfinite(lo), has_hi = std::isfinite(hi);
  if (has_lo && has_hi) {
    return "in " + std::string(lo_inclusive ? "[" : "(") + lo_text + ", " + hi_text +
           (hi_inclusive ? "]" : ")");
  }
  if (has_lo) return low + lo_text;
  if (has_hi) return std::string(hi_inclusive ? "<= " : "< ") + hi_text;
  return "";
}

std::string KeySpec::type_name() const {
  auto bounded = [this](std::string base) {
    std::string limits = range.describe();
    return limits.empty() ? base : base + " " + limits;
  };
  switch (kind) {
    case ValueKind::integer:
      return zero_word.empty() ? bounded("integer")
                               : bounded("integer") + " or \"" + std::string(zero_word) + "\"";
    case ValueKind::real:
      return bounded("float");
    case ValueKind::boolean:
      return "bool";
    case ValueKind::text:
      break;
  }
  if (choices.empty()) return "string";
  std::string text = "one of ";
  for (size_t i = 0; i < choices.size(); ++i) text += (i ? ", " : "") + std::string(choices[i]);
  return text;
}

const std::vector<KeySpec>& schema() {
  static const std::vector<KeySpec> table = build_schema();
  return table;
}

const KeySpec* find_key(std::string_view name) {
  for (const KeySpec& key : schema()) {
    if (key.name == name) return &key;
  }
  return nullptr;
}

std::string format_value(const Value& value) {
  if (const auto* i = std::get_if<int64_t>(&value)) return std::to_string(*i);
  if (const auto* d = std::get_if<double>(&value)) return shortest(*d);
  if (const auto* b = std::get_if<bool>(&value)) return *b ? "true" : "false";
  return quote(std::get<std::string>(value));
}

std::string format_value(const KeySpec& key, const Value& value) {
  if (key.single_precision) return shortest(static_cast<float>(std::get<double>(value)));
  return format_value(value);
}

}  // namespace tessera::config_detail

namespace tessera {

std::string_view model_family_name(ModelFamily family) {
  return config_detail::EnumNames<ModelFamily>::names.at(static_cast<std::size_t>(family));
}

}  // namespace tessera
