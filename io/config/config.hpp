// The resolved configuration of a tessera run: every setting with its final value, after the
// TOML file, `--set section.key=value` overrides and family defaults have been applied.
//
// Names are part of tessera's interface (job scripts and docs use them): `run.dir`,
// `train.steps`, `train.seed`, `train.global_batch`, `train.micro_batch`, `train.lr`,
// `model.family`, `data.source`, `data.tokenizer` are fixed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace tessera {

enum class ModelFamily { gpt2, openlm };
enum class NormKind { layernorm, rmsnorm };
enum class LrSchedule { cosine, constant };
enum class PipelineScheduleKind { one_f_one_b, gpipe, interleaved };
enum class BackendKind { cpu, cuda, kokkos };
/// What the matrix products compute in: fp32, or bf16 operands with fp32 accumulation (weights,
/// optimizer state, norms, softmax and the loss stay fp32; on the cpu, only the linear layers).
enum class Precision { fp32, bf16 };
/// What backward recomputes instead of keeping from forward: nothing; the attention core (its
/// softmax probabilities, the largest activation); or each whole block from its input.
enum class Recompute { none, selective, full };
/// When the token shards' payload checksums are checked: as the run opens them, or never (for
/// data verified some other way; the manifest records which).
enum class DataVerify { open, off };

struct ModelConfig {
  ModelFamily family = ModelFamily::gpt2;
  int n_layers = 2;
  int d_model = 64;
  int n_heads = 4;
  int seq_len = 64;
  int vocab_size = 256;
  /// Width of the MLP's hidden layer; derived when 0: 4*d_model (gpt2), or
  /// 256*ceil(8*d_model/3/256) (openlm, SwiGLU).
  int ffn_hidden = 0;
  /// gpt2 defaults to layernorm; openlm to layernorm (gain and bias); rmsnorm is an option.
  NormKind norm = NormKind::layernorm;
  float norm_eps = 1e-5f;
  float rotary_base = 10000.0f;  ///< openlm only
  float z_loss = 0.0f;           ///< coefficient of the z-loss term lse^2; 0 disables it
  float init_std = 0.02f;

  int head_dim() const { return d_model / n_heads; }
  bool tied_embeddings() const { return family == ModelFamily::gpt2; }
  bool has_bias() const { return family == ModelFamily::gpt2; }
  bool learned_positions() const { return family == ModelFamily::gpt2; }
  bool rotary() const { return family == ModelFamily::openlm; }
  bool swiglu() const { return family == ModelFamily::openlm; }

  bool operator==(const ModelConfig&) const = default;
};

struct TrainConfig {
  int steps = 100;
  uint64_t seed = 1;
  int global_batch = 8;  ///< sequences per optimizer step
  int micro_batch = 8;   ///< sequences per microbatch per rank
  float lr = 1e-3f;
  float min_lr = 1e-4f;  ///< floor of the cosine decay
  int warmup_steps = 10;
  LrSchedule lr_schedule = LrSchedule::cosine;
  float weight_decay = 0.1f;
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float adam_eps = 1e-8f;
  float grad_clip = 1.0f;  ///< global L2 norm limit; 0 disables clipping
  /// End cleanly, with a checkpoint, once global step N is done (0: run all steps). Changes
  /// nothing else about the run: a resumed run continues exactly where it stopped.
  int stop_after = 0;
  /// A step whose loss or gradient norm is not finite leaves the weights alone; this many such
  /// steps in a row end the run (kDivergedExit), keeping the checkpoints written before.
  int max_bad_steps = 5;
  /// No rank progressing for this long ends the job (kHungExit) with a line naming the stuck
  /// ranks; 0 watches nothing.
  double hang_timeout_s = 600.0;
  /// Weight decay is applied to matrices only unless these say otherwise.
  bool decay_norms_and_biases = false;
  bool decay_embeddings = false;
  BackendKind backend = BackendKind::cpu;
  Precision precision = Precision::fp32;
  Recompute recompute = Recompute::none;

  bool operator==(const TrainConfig&) const = default;
};

struct DataConfig {
  /// "synthetic" for the built-in Markov source, or a directory written by `tessera prepare`.
  std::string source = "synthetic";
  /// Several prepared directories mixed by weight ("a,b"); when set, data.source is unused.
  std::string sources;
  /// Their weights ("0.7,0.3", normalised to sum 1); empty: in proportion to their sizes.
  std::string weights;
  /// "byte", "sentencepiece", "hf" or "hf:PATH" (prepared data only; recorded in the shards).
  std::string tokenizer = "byte";
  uint64_t seed = 1234;  ///< seed of the synthetic source and of the sample order
  DataVerify verify = DataVerify::open;

  bool operator==(const DataConfig&) const = default;
};

struct EvalConfig {
  int every = 50;   ///< evaluate every N steps (and at the end); 0 disables evaluation
  int batches = 4;  ///< validation microbatches per evaluation

  bool operator==(const EvalConfig&) const = default;
};

struct LogConfig {
  int every = 1;  ///< console and metrics.jsonl line every N steps
  /// Peak FLOP/s used for MFU, in TFLOP/s. Default: the fp32 sgemm peak of a 2-core AVX-512
  /// machine (2 x ~160 GFLOP/s) as measured in doc/performance.md.
  double peak_tflops = 0.32;
  /// "auto" (bar on a terminal, plain lines otherwise), "bar" or "plain".
  std::string progress = "auto";

  bool operator==(const LogConfig&) const = default;
};

struct CheckpointConfig {
  /// Where checkpoints go; empty means <run.dir>/checkpoints. A run starting with a
  /// checkpoint there resumes from the newest valid one.
  std::string dir;
  int every = 0;  ///< also save every N steps (0: only at the end and at train.stop_after)
  double every_minutes = 0.0;  ///< also save when this much wall time passed since the last save
  int keep = 3;                ///< keep the newest N checkpoints
  /// Save after the last step. false for timing runs that need no checkpoint (tessera sweep's
  /// points); a stop on a signal or the time limit still saves.
  bool at_end = true;
  /// Copy the state to host memory at the step boundary and write it from a background thread
  /// while training continues (needs MPI_THREAD_MULTIPLE).
  bool async = false;

  bool operator==(const CheckpointConfig&) const = default;
};

struct RunConfig {
  std::filesystem::path dir = "runs/default";
  /// When the job ends, as UNIX seconds; 0 asks Slurm (SLURM_JOB_END_TIME, else squeue). The
  /// run stops with a checkpoint (exit status 75) before another step and a save would pass it.
  int64_t deadline = 0;
  /// Seconds kept free before the job's end on top of the longest step and save.
  double stop_margin_s = 60.0;

  bool operator==(const RunConfig&) const = default;
};

/// How the ranks of the job split the work: dp x tp x pp ranks (see doc/parallelism.md).
struct ParallelConfig {
  int tp = 1;  ///< tensor-parallel ranks: split heads, MLP width and vocabulary
  int pp = 1;  ///< pipeline stages: split the layers
  int dp = 0;  ///< data-parallel replicas; 0 derives it from the job's rank count
  /// Axis order, fastest-varying first: "tp-dp-pp" keeps each tp group on consecutive ranks
  /// (inside a node).
  std::string order = "tp-dp-pp";
  PipelineScheduleKind schedule = PipelineScheduleKind::one_f_one_b;
  int chunks_per_stage = 1;  ///< virtual stages per rank (interleaved schedule only)
  /// Blocks per virtual stage, e.g. "3,3,2"; empty balances them by cost.
  std::string stage_layers;
  int zero = 0;  ///< 1: shard AdamW state over dp (ZeRO stage 1)
  /// Sum gradients in a fixed order independent of dp and of the MPI library: dp = k is then
  /// bitwise equal to dp = 1 with k-fold gradient accumulation.
  bool deterministic = false;
  float bucket_mb = 25.0f;  ///< size of a data-parallel gradient bucket, MiB
  /// Megatron sequence parallelism: with tp > 1, the norm regions and the residual stream hold
  /// only this rank's block of (micro_batch * seq_len) / tp rows.
  bool sequence_parallel = false;

  bool operator==(const ParallelConfig&) const = default;
};

/// Faults a test can ask for, so that the paths that handle them are exercised.
struct DebugConfig {
  /// From this step on (0: never), the gradients are made NaN after backward, for
  /// nan_gradient_steps steps.
  int nan_gradients_from = 0;
  int nan_gradient_steps = 1;
  /// At the start of this step (0: never), rank stall_rank stops progressing (alive, its
  /// watchdog still answering) until the hang watchdog ends the job.
  int stall_at_step = 0;
  int stall_rank = 0;
  /// An asynchronous save's writer thread waits this long before it takes its snapshot.
  int snapshot_delay_ms = 0;

  bool operator==(const DebugConfig&) const = default;
};

struct Config {
  RunConfig run;
  ModelConfig model;
  TrainConfig train;
  DataConfig data;
  EvalConfig eval;
  LogConfig log;
  ParallelConfig parallel;
  CheckpointConfig checkpoint;
  DebugConfig debug;

  bool operator==(const Config&) const = default;
};

/// Reads a TOML file, applies `section.key=value` overrides and checks every value.
/// Throws UsageError (one line: what is wrong and how to fix it) on an unknown key, a wrong type,
/// an out-of-range value or shapes that do not divide.
/// One directory of data.sources and its weight (NaN when data.weights is empty).
struct DataSourceSpec {
  std::string dir;
  double weight;
};

/// data.sources with data.weights, one entry each; empty when data.sources is. UsageError for an
/// empty entry, a weight that is not a positive number, or counts that differ.
std::vector<DataSourceSpec> data_sources(const DataConfig& data);

/// "gpt2" or "openlm", as model.family spells it.
std::string_view model_family_name(ModelFamily family);

Config load_config(const std::filesystem::path& file, const std::vector<std::string>& overrides);

/// Same, from TOML text (for tests and for configs stored inside checkpoints).
Config parse_config(const std::string& toml_text, const std::vector<std::string>& overrides);

/// The fully resolved configuration as TOML, derived values (ffn_hidden) filled in; parsing the
/// result gives back the same Config.
std::string to_toml(const Config& config);

/// A setting whose value differs between two configurations, values as TOML text.
struct SettingChange {
  std::string key;  ///< "train.lr"
  std::string before, after;
};

/// Every key whose value differs from `before` to `after`, in schema order.
std::vector<SettingChange> changed_settings(const Config& before, const Config& after);

/// One settable key, for `--help` and doc/configuration.md (generated from the same table that
/// parses, overrides and writes the configuration).
struct ConfigKeyInfo {
  std::string name;           ///< "train.lr"
  std::string type;           ///< "float > 0", "integer >= 1", "one of gpt2, openlm", ...
  std::string default_value;  ///< as TOML text: `1e-3`, `"synthetic"`, `false`
  std::string description;    ///< one line
};

/// Every key in schema order (sections run, model, train, data, eval, log).
std::vector<ConfigKeyInfo> describe_config_keys();

}  // namespace tessera
