// The one training loop (see run_loop.h). In order:
//   1. start_run: threads, ranks, device, the run folder and config.ini.
//   2. run_loop's preparation: the model on the device, AdamW and the schedule, synchronized
//      batch norm and the gradient reducer for several ranks, resume or a fresh start, the logs.
//   3. The step: batch -> forward -> backward (+ averaging over ranks) -> clip -> update, then the
//      metrics row, the progress line, the evaluation and checkpoint cadence.
//   4. The end: timing, the final evaluation and the task's result files.
#include "train/run_loop.h"

#include <omp.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "autograd/functions.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/generator.h"
#include "core/json_read.h"
#include "core/ops.h"
#include "dist/differentiable.h"
#include "dist/gradient_reducer.h"
#include "nn/batch_norm.h"
#include "train/adamw.h"
#include "train/checkpoint.h"
#include "train/device_select.h"
#include "train/lr_schedule.h"
#include "train/progress.h"
#include "train/step_tail.h"
#include "train/stopwatch.h"

namespace cw::train {
namespace fs = std::filesystem;

namespace {

// Keeps the CSV/JSONL logs in step with a resumed run: rows after the checkpoint's step were
// written by the interrupted process and are dropped (the resumed run writes them again).
void truncate_log(const fs::path& path, int64_t last_step, bool csv) {
  if (!fs::exists(path)) return;
  std::ifstream in(path);
  std::string line, kept;
  bool header = csv;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (header) {
      kept += line + "\n";
      header = false;
      continue;
    }
    // A log is a file like any other: a damaged line is an error naming it, not a crash.
    const std::string where = path.string() + ":" + std::to_string(number);
    int64_t step = -1;
    if (csv) {
      const std::string field = line.substr(0, line.find(','));
      size_t used = 0;
      try {
        step = std::stoll(field, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      CW_CHECK(used == field.size() && used > 0, ValueError, where, ": expected a step number, found '",
               field.substr(0, 80), "'");
    } else {
      const Json row = parse_json(line, where);
      step = JsonReader(row, where).get_or<int64_t>("step", -1);
    }
    if (step <= last_step) kept += line + "\n";
  }
  write_file_atomic(path, kept);
}

std::string join_counts(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? " + " : "") + std::to_string(v[i]);
  return s;
}

// The step's metrics over all ranks: each rank's parts added (a world of one keeps its own).
void sum_over_ranks(dist::Communicator& comm, std::vector<StepMetric>& metrics) {
  if (comm.world_size() == 1) return;
  std::vector<double> parts;
  for (const StepMetric& m : metrics) parts.push_back(m.summed_over_ranks ? m.value : 0.0);
  Tensor sums = ops::from_vector(parts, {static_cast<int64_t>(parts.size())});
  comm.all_reduce(sums, dist::ReduceOp::Sum);
  const std::vector<double> total = sums.to_vector<double>();
  for (size_t i = 0; i < metrics.size(); ++i)
    if (metrics[i].summed_over_ranks) metrics[i].value = total[i];
}

// One <name>.csv (header from the first row's names) and <name>.jsonl pair, appended to.
class LogPair {
 public:
  void open(const fs::path& out, const std::string& name, bool lead) {
    if (!lead) return;
    csv_.open(out / (name + ".csv"), std::ios::app);
    jsonl_.open(out / (name + ".jsonl"), std::ios::app);
    needs_header_ = fs::file_size(out / (name + ".csv")) == 0;
  }
  void write(const std::vector<std::string>& header, const std::string& row, const nlohmann::json& j) {
    if (!csv_.is_open()) return;
    if (needs_header_) {
      for (size_t i = 0; i < header.size(); ++i) csv_ << (i ? "," : "") << header[i];
      csv_ << "\n";
      needs_header_ = false;
    }
    csv_ << row << std::endl;
    jsonl_ << j.dump() << std::endl;
  }

 private:
  std::ofstream csv_, jsonl_;
  bool needs_header_ = false;
};

// The "# resume N" headers already in config_history.ini.
int count_resumes(const fs::path& history) {
  std::ifstream in(history);
  int n = 0;
  for (std::string line; std::getline(in, line);) n += line.rfind("# resume ", 0) == 0;
  return n;
}

std::string format_cell(const char* format, double v) {
  char cell[64];
  std::snprintf(cell, sizeof cell, format, v);
  return cell;
}

}  // namespace

RunContext start_run(const LoopOptions& o, const std::string& config_ini, bool data_parallel,
                     std::ostream& log) {
  if (o.threads > 0) omp_set_num_threads(static_cast<int>(o.threads));
  RunContext ctx;
  ctx.config_ini = config_ini;
  // In a world of one (no launcher) every collective is the identity.
  ctx.comm = &dist::world(o.dist_backend, o.dist_timeout);
  ctx.rank = ctx.comm->rank();
  ctx.world = ctx.comm->world_size();
  CW_CHECK(ctx.world == 1 || data_parallel, OptionError,
           "this task runs as one process; launch it without mpirun/srun");
  ctx.log_ = &log;
  if (ctx.lead()) {  // the caches' and evaluations' progress lines
    set_progress_log(&log);
    ctx.progress_ = std::shared_ptr<void>(nullptr, [](void*) { set_progress_log(nullptr); });
  }
  if (!ctx.lead()) {
    ctx.closed_ = std::make_shared<std::ostream>(nullptr);
    ctx.log_ = ctx.closed_.get();
  }
  // Under a launcher, `cuda` means one GPU per rank: the rank's local rank on its machine (an
  // explicit cuda:N is taken as given, e.g. with CUDA_VISIBLE_DEVICES set per rank). The
  // collectives then copy device tensors through the host (dist/mpi_communicator.h).
  const std::string device_spec =
      ctx.world > 1 && o.device == "cuda" ? "cuda:" + std::to_string(dist::local_rank()) : o.device;
  ctx.device = select_device(device_spec);
  apply_cuda_options(ctx.device, o.conv, o.tf32);
  CW_CHECK(o.batch_size >= ctx.world, OptionError, "--optim.batch_size (", o.batch_size,
           ") must be at least the ", ctx.world, " ranks: each rank takes a slice of the global batch");
  if (ctx.lead()) {
    const fs::path out(o.out);
    fs::create_directories(out);
    const fs::path first = out / "config.ini", history = out / "config_history.ini";
    if (o.resume && fs::exists(first)) {
      // config.ini stays what the run was started with (eval --run builds the model from it);
      // each resume's options, which may differ (more steps, another device), are kept in order.
      std::ofstream(history, std::ios::app) << "# resume " << count_resumes(history) + 1 << "\n"
                                            << config_ini << "\n";
      log << "train: resolved configuration of this resume (appended to " << history.string() << "; "
          << first.string() << " keeps the first start's)\n"
          << config_ini << "\n";
    } else {
      log << "train: resolved configuration (also in " << first.string() << ")\n" << config_ini << "\n";
      write_file_atomic(first, config_ini);
      fs::remove(history);  // a fresh start of the folder: no resumes yet
    }
    log << std::flush;
  }
  if (ctx.world > 1)
    log << "dist: " << ctx.world << " ranks (" << ctx.comm->name() << "), global batch " << o.batch_size
        << " = " << join_counts(dist::shard_counts(o.batch_size, ctx.world)) << " rows per rank\n";
  return ctx;
}

namespace {

// The loop's state, one method per phase (each short enough to read at once).
class Loop {
 public:
  Loop(Task& task, const LoopOptions& o, const RunContext& ctx)
      : task_(task),
        o_(o),
        ctx_(ctx),
        comm_(*ctx.comm),
        log_(ctx.log()),
        out_(o.out),
        model_(task.model()),
        // The model goes to the device before the optimizer: its moments are made beside each
        // parameter. Batches are copied there each step.
        opt_((model_.train(), model_.to(ctx.device),
              make_param_groups(model_.named_parameters(), o.weight_decay, task.no_decay_names())),
             AdamWOptions{o.lr, o.beta1, o.beta2, o.eps, o.weight_decay}),
        params_(trained_parameters(opt_)),
        schedule_{o.lr, o.warmup_steps, o.steps, o.min_lr_ratio},
        reducer_(comm_, params_, static_cast<int64_t>(o.dist_bucket_mb * 1024 * 1024)),
        shard_(dist::shard_rows(o.batch_size, ctx.rank, ctx.world)),
        bar_(o.progress == "bar" || (o.progress == "auto" && &log_ == &std::cout && isatty(STDOUT_FILENO))) {
    log_ << "model: " << task.describe() << "\n";
    // Synchronized batch norm: statistics over the global batch, as one process would have them.
    if (ctx.world > 1)
      nn::set_batch_norm_replica_sum([this](const Variable& v) { return dist::all_reduce_sum(comm_, v); });
  }
  ~Loop() { nn::set_batch_norm_replica_sum({}); }

  LoopResult run() {
    resume_or_start();
    if (step_ == 0 && task_.evaluates_at_start() && ctx_.lead()) evaluate(0, o_.eval_max_items);
    comm_.reset_stats();
    t_train_ = Clock::now();
    first_ = step_;
    // --run.stop_after: this process stops early, with a checkpoint to resume from.
    const int64_t stop_at = o_.stop_after > 0 ? std::min(o_.steps, first_ + o_.stop_after) : o_.steps;
    while (step_ < stop_at) {
      if (!take_step()) break;  // batch -> forward -> backward -> clip -> update, and the logs
      const bool last = step_ == o_.steps;
      if (o_.eval_every > 0 && step_ % o_.eval_every == 0 && !last) {
        if (ctx_.lead()) evaluate(step_, o_.eval_max_items);
        if (ctx_.world > 1) comm_.barrier(0);  // the others wait for rank 0's evaluation, however long
      }
      if ((o_.checkpoint_every > 0 && step_ % o_.checkpoint_every == 0) || last || step_ == stop_at) save();
    }
    report_end();
    if (result_.stopped_on_nan || !ctx_.lead()) return result_;
    if (step_ < o_.steps) {
      log_ << "train: stopped after " << step_ - first_
           << " steps (--run.stop_after); continue with --run.resume true\n";
      return result_;
    }
    const EvalRecord final_eval = evaluate(step_, 0);
    task_.finish(step_, result_.train_seconds, final_eval, log_);
    result_.finished = true;
    return result_;
  }

 private:
  static std::vector<Variable> trained_parameters(const AdamW& opt) {
    std::vector<Variable> params;
    for (const auto& g : opt.groups())
      for (const auto& p : g.params) params.push_back(p);
    return params;
  }

  // One optimizer step; false when it stopped (a non-finite loss or gradient: nothing updated).
  bool take_step() {
    const auto t_step = Clock::now();
    StepTail tail;
    TaskLoss l;
    int64_t epoch = 0;
    try {
      epoch = task_.load_batch();        // 1. this step's batch (the same on every rank; the speech-text
                                         //    task reads the features of this rank's rows only)
      l = task_.forward(step_, shard_);  // 2. forward: this rank's rows' part of the loss
      sum_over_ranks(comm_, l.metrics);  //    (+ the other ranks' parts: the batch's loss)
      // 3-5. backward through world x the part, then the mean of the gradients over ranks (the
      // gradient of the batch's loss on every rank), clip, AdamW update.
      const Variable scaled = ctx_.world > 1 ? ag::mul(l.loss, static_cast<double>(ctx_.world)) : l.loss;
      tail = finish_step(scaled, l.metrics.at(0).value, params_, o_.grad_clip, opt_, schedule_, step_, log_,
                         [&] { reducer_.average(); });
    } catch (const ValueError& e) {  // the losses report NaN / Inf embeddings as a ValueError
      log_ << "\ntrain: stopped at step " << step_ + 1 << ": " << e.what() << "\n";
      tail.stopped = true;
    }
    if (tail.stopped) {
      const auto ck = ctx_.lead() ? load_latest_checkpoint(out_ / "checkpoints") : std::nullopt;
      log_ << "train: last good checkpoint: "
           << (ck ? ck->path.string() : std::string("none (no checkpoint was written yet)")) << "\n";
      result_.stopped_on_nan = true;
      return false;
    }
    ++step_;
    result_.losses.push_back(l.metrics.at(0).value);
    write_metrics(epoch, l.metrics, tail, seconds_since(t_step));
    print_progress(l.metrics, tail.lr);
    return true;
  }

  // The metrics row: step, epoch, the task's metrics, lr, gradient norm, seconds.
  void write_metrics(int64_t epoch, const std::vector<StepMetric>& task_metrics, const StepTail& tail,
                     double step_seconds) {
    std::vector<StepMetric> metrics = {{"epoch", "epoch", static_cast<double>(epoch), "%.0f", false}};
    metrics.insert(metrics.end(), task_metrics.begin(), task_metrics.end());
    metrics.push_back({"lr", "lr", tail.lr, "%.6g", false});
    metrics.push_back({"grad_norm", "grad_norm", tail.norm, "%.4f", false});
    metrics.push_back({"step_seconds", "step_seconds", step_seconds, "%.3f", false});
    std::vector<std::string> header = {"step"};
    std::string row = std::to_string(step_);
    nlohmann::json j = {{"step", step_}};
    for (const StepMetric& m : metrics) {
      header.push_back(m.column);
      row += ',';  // (not "," + cell: GCC 12 warns falsely on that concatenation, -Wrestrict)
      row += format_cell(m.format, m.value);
      j[m.key] = m.value;
    }
    metrics_log_.write(header, row, j);
  }

  void print_progress(const std::vector<StepMetric>& metrics, double lr) {
    const double per_step = seconds_since(t_train_) / static_cast<double>(step_ - first_);
    char rate[160];
    std::snprintf(rate, sizeof rate, "  lr %.2e  %.1f %s/s  ETA %s", lr,
                  static_cast<double>(o_.batch_size) / per_step, task_.items_name(),
                  eta_string(per_step * static_cast<double>(o_.steps - step_)).c_str());
    const std::string line = "step " + std::to_string(step_) + "/" + std::to_string(o_.steps) + "  " +
                             task_.progress(metrics) + rate;
    if (bar_) {
      const int width = 24, done = static_cast<int>(width * step_ / o_.steps);
      log_ << "\r[" << std::string(done, '=') << std::string(width - done, ' ') << "] " << line << "   "
           << std::flush;
      if (step_ == o_.steps) log_ << "\n";
    } else if (step_ % o_.log_every == 0 || step_ == o_.steps || step_ == first_ + 1) {
      log_ << line << "\n" << std::flush;
    }
  }

  // Resume from the latest checkpoint (--run.resume), or start fresh; then every rank holds rank
  // 0's weights and buffers (equal already when built from the same seed or checkpoint; the
  // broadcast makes it so whatever happened before).
  void resume_or_start() {
    const std::vector<std::string> logs = {"metrics", task_.eval_log()};
    const fs::path ckpt_dir = out_ / "checkpoints";
    if (o_.resume) {
      if (auto ck = load_latest_checkpoint(ckpt_dir)) {
        const nn::LoadReport rep = model_.load_state_dict(ck->model, true);
        CW_CHECK(rep.ok(), ValueError, "--run.resume: ", ck->path.string(),
                 " does not fit this model: ", rep.str());
        opt_.load_state_tensors(ck->optimizer, ck->optimizer_step);
        // Each rank its own dropout stream (seed + rank; rank 0's is the one saved).
        default_generator().set_state(ck->state.seed + static_cast<uint64_t>(ctx_.rank),
                                      ck->state.rng_offset);
        task_.seek({ck->state.epoch, ck->state.batch_in_epoch});
        step_ = ck->state.step;
        if (ctx_.lead())
          for (const std::string& name : logs) {
            truncate_log(out_ / (name + ".csv"), step_, true);
            truncate_log(out_ / (name + ".jsonl"), step_, false);
          }
        log_ << "resume: " << ck->path.string() << " (step " << step_ << ")\n";
      } else {
        log_ << "resume: no checkpoint in " << ckpt_dir.string() << ", starting from step 0\n";
      }
    }
    if (step_ == 0) {
      if (ctx_.lead())
        for (const std::string& name : logs)
          for (const char* ext : {".csv", ".jsonl"}) fs::remove(out_ / (name + ext));
      default_generator().manual_seed(o_.seed + static_cast<uint64_t>(ctx_.rank));  // dropout draws
    }
    if (ctx_.world > 1) {
      std::vector<Tensor> state;
      for (const auto& [name, t] : model_.state_dict()) state.push_back(t);
      dist::broadcast_tensors(comm_, state, 0);
    }
    result_.first_step = step_;
    metrics_log_.open(out_, "metrics", ctx_.lead());
    eval_log_.open(out_, task_.eval_log(), ctx_.lead());
  }

  EvalRecord evaluate(int64_t at_step, int64_t max_items) {
    if (bar_ && at_step > 0) log_ << "\n";
    EvalRecord r = task_.evaluate(at_step, max_items);
    std::vector<std::string> header = {"step"};
    std::ostringstream row;
    row << at_step;
    for (const auto& [name, value] : r.columns) {
      header.push_back(name);
      row << ',' << value;
    }
    nlohmann::json j = r.json;
    j["step"] = at_step;
    j["max_items"] = max_items;
    eval_log_.write(header, row.str(), j);
    log_ << "eval @ step " << at_step << (max_items > 0 ? " (subset)" : "") << ": " << r.text << std::flush;
    result_.evals.emplace_back(at_step, r);
    return r;
  }

  void save() {
    if (!ctx_.lead()) return;  // one writer; the state is the same on every rank
    const DataPosition at = task_.position();
    TrainerState st;
    st.step = step_;
    st.epoch = at.epoch;
    st.batch_in_epoch = at.batch_in_epoch;
    st.seed = default_generator().seed();
    st.rng_offset = default_generator().offset();
    st.config_text = ctx_.config_ini;
    save_checkpoint(out_ / "checkpoints", model_.state_dict(), opt_, st, static_cast<int>(o_.keep_last));
  }

  void report_end() {
    result_.train_seconds = seconds_since(t_train_);
    result_.steps_done = step_;
    log_ << "train: " << step_ - first_ << " steps in " << result_.train_seconds << " s" << task_.summary()
         << "\n"
         << device_memory_line(ctx_.device);
    result_.comm = comm_.stats();
    if (ctx_.world == 1 || step_ == first_) return;
    const double steps_run = static_cast<double>(step_ - first_);
    char line[256];
    std::snprintf(
        line, sizeof line,
        "dist: rank 0 spent %.3f s in %lld collectives (%.2f ms and %.3f MB per step, %lld gradient "
        "buckets)\n",
        result_.comm.seconds, static_cast<long long>(result_.comm.calls),
        1e3 * result_.comm.seconds / steps_run, static_cast<double>(result_.comm.bytes) / 1e6 / steps_run,
        static_cast<long long>(reducer_.buckets()));
    log_ << line;
  }

  Task& task_;
  const LoopOptions& o_;
  const RunContext& ctx_;
  dist::Communicator& comm_;
  std::ostream& log_;
  const fs::path out_;
  nn::Module& model_;
  AdamW opt_;
  const std::vector<Variable> params_;
  const LrSchedule schedule_;
  dist::GradientReducer reducer_;
  const dist::RowShard shard_;
  const bool bar_;
  LogPair metrics_log_, eval_log_;
  LoopResult result_;
  int64_t step_ = 0, first_ = 0;
  Clock::time_point t_train_;
};

}  // namespace

LoopResult run_loop(Task& task, const LoopOptions& o, const RunContext& ctx) {
  return Loop(task, o, ctx).run();
}

}  // namespace cw::train
