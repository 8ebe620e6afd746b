#include "train/pipeline_executor.hpp"

#include "core/error.hpp"
#include "train/step_timer.hpp"

namespace tessera {
namespace {

/// Evaluation runs in an activation slot of its own, so it never overwrites a training slot.
constexpr int kEvaluationSlot = 1 << 20;

}  // namespace

PipelineExecutor::PipelineExecutor(std::vector<Transformer*> chunks, Communicator* pp, int stage,
                                   int stages, Backend& backend)
    : chunks_(std::move(chunks)), pp_(pp), stage_(stage), stages_(stages), backend_(backend) {
  TESSERA_CHECK(!chunks_.empty(), "a pipeline stage without model chunks");
  TESSERA_CHECK(stages == 1 || pp != nullptr, "pipeline parallelism without a communicator");
}

int PipelineExecutor::tag(int microbatch, int chunk, bool gradient) const {
  // The chunk that receives the message, so that interleaved chunks never take each other's.
  return (microbatch * static_cast<int>(chunks_.size()) + chunk) * 2 + (gradient ? 1 : 0);
}

std::size_t PipelineExecutor::activation_count(int batch) const {
  return chunks_.front()->stage_activation_count(batch);
}

float* PipelineExecutor::gradient_send_buffer(int chunk, int microbatch, int batch) {
  if (batch != gradient_buffer_batch_) {  // first step (or a new batch size): allocate once
    gradient_buffers_.clear();
    buffer_pool_ = std::make_unique<BufferPool>(backend_);
    gradient_buffer_batch_ = batch;
  }
  float*& buffer = gradient_buffers_[{chunk, microbatch}];
  if (buffer == nullptr) buffer = buffer_pool_->take(activation_count(batch));
  return buffer;
}

double PipelineExecutor::forward(int chunk, int microbatch, int slot, int batch, float grad_scale,
                                 const MicrobatchTokens& tokens) {
  Transformer& model = *chunks_[static_cast<std::size_t>(chunk)];
  const std::size_t count = activation_count(batch);
  if (!model.first_stage()) {
    StepTimer waiting;
    pp_->recv(model.stage_input(slot, batch), count, previous_stage(),
              tag(microbatch, chunk, false));
    timings_.wait_s += waiting.seconds();
  }
  StepTimer computing;
  const double loss = model.forward(slot, tokens.inputs, tokens.targets, batch, grad_scale);
  timings_.compute_s += computing.seconds();
  if (!model.last_stage()) {
    const int to_chunk = stage_ == stages_ - 1 ? chunk + 1 : chunk;
    sends_.push_back(pp_->send_async(model.stage_output(slot), count, next_stage(),
                                     tag(microbatch, to_chunk, false)));
  }
  return loss;
}

void PipelineExecutor::backward(int chunk, int microbatch, int slot, int batch,
                                const GradientsReadyHook* ready) {
  Transformer& model = *chunks_[static_cast<std::size_t>(chunk)];
  const std::size_t count = activation_count(batch);
  if (!model.last_stage()) {
    StepTimer waiting;
    pp_->recv(model.output_gradient(batch), count, next_stage(), tag(microbatch, chunk, true));
    timings_.wait_s += waiting.seconds();
  }
  StepTimer computing;
  model.backward(slot, ready);
  timings_.compute_s += computing.seconds();
  if (!model.first_stage()) {
    // input_gradient() is scratch the next backward overwrites: send from a copy of its own.
    float* buffer = gradient_send_buffer(chunk, microbatch, batch);
    backend_.copy_device(buffer, model.input_gradient(), count);
    const int to_chunk = stage_ == 0 ? chunk - 1 : chunk;
    sends_.push_back(
        pp_->send_async(buffer, count, previous_stage(), tag(microbatch, to_chunk, true)));
  }
}

void PipelineExecutor::wait_for_sends() {
  StepTimer waiting;
  for (Request& send : sends_) send.wait();
  sends_.clear();
  timings_.wait_s += waiting.seconds();
}

std::vector<double> PipelineExecutor::run_step(const StageSchedule& schedule, int microbatches,
                                               int batch, float grad_scale,
                                               const std::function<MicrobatchTokens(int)>& tokens,
                                               const StepHooks& hooks) {
  // The last backward of each chunk gets the gradient-ready hook.
  std::vector<std::size_t> last_backward(chunks_.size(), schedule.size());
  for (std::size_t i = 0; i < schedule.size(); ++i) {
    if (schedule[i].kind == ActionKind::backward) {
      last_backward[static_cast<std::size_t>(schedule[i].chunk)] = i;
    }
  }
  // A microbatch holds an activation slot of its chunk from its forward to its backward; slots
  // are reused, so memory follows the schedule's microbatches in flight (1 without a pipeline,
  // at most `stages` under 1F1B, all of them under GPipe), not the microbatch count.
  std::vector<std::vector<int>> free_slots(chunks_.size());
  std::vector<int> slots_made(chunks_.size(), 0);
  std::map<std::pair<int, int>, int> slot_of;  // (chunk, microbatch) -> slot
  std::vector<double> losses(static_cast<std::size_t>(microbatches), 0.0);
  for (std::size_t i = 0; i < schedule.size(); ++i) {
    const Action& action = schedule[i];
    const auto chunk = static_cast<std::size_t>(action.chunk);
    if (action.kind == ActionKind::forward) {
      int slot = slots_made[chunk];
      if (free_slots[chunk].empty()) {
        ++slots_made[chunk];
      } else {
        slot = free_slots[chunk].back();
        free_slots[chunk].pop_back();
      }
      slot_of[{action.chunk, action.microbatch}] = slot;
      losses[static_cast<std::size_t>(action.microbatch)] += forward(
          action.chunk, action.microbatch, slot, batch, grad_scale, tokens(action.microbatch));
    } else {
      const int slot = slot_of.at({action.chunk, action.microbatch});
      const bool final = last_backward[chunk] == i;
      const GradientsReadyHook* ready =
          final && hooks.final_backward ? hooks.final_backward(action.chunk) : nullptr;
      backward(action.chunk, action.microbatch, slot, batch, ready);
      free_slots[chunk].push_back(slot);
      if (hooks.after_backward) hooks.after_backward(action.chunk, action.microbatch);
    }
  }
  wait_for_sends();
  return losses;
}

std::vector<double> PipelineExecutor::run_forward(
    int microbatches, int batch, const std::function<MicrobatchTokens(int)>& tokens,
    const TokenLossesSink& token_losses) {
  std::vector<double> losses(static_cast<std::size_t>(microbatches), 0.0);
  for (int microbatch = 0; microbatch < microbatches; ++microbatch) {
    for (int chunk = 0; chunk < static_cast<int>(chunks_.size()); ++chunk) {
      losses[static_cast<std::size_t>(microbatch)] +=
          forward(chunk, microbatch, kEvaluationSlot, batch, 0.0f, tokens(microbatch));
      const Transformer& model = *chunks_[static_cast<std::size_t>(chunk)];
      if (token_losses && model.last_stage()) token_losses(microbatch, model.token_losses(batch));
    }
    wait_for_sends();  // the next microbatch reuses the slot whose output is being sent
  }
  return losses;
}

PipelineTimings PipelineExecutor::take_timings() {
  PipelineTimings taken = timings_;
  for (Transformer* chunk : chunks_) taken.tp_comm_s += chunk->take_tp_seconds();
  taken.compute_s -= taken.tp_comm_s;
  timings_ = {};
  return taken;
}

}  // namespace tessera
