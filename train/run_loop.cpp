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
#include "core/error.h"
#include "core/generator.h"
#include "core/json_read.h"
#include "core/ops.h"
#include "dist/differentiable.h"
#include "dist/gradient_reducer.h"
#include "nn/batch_norm.h"
#include "train/adamw.h"
#include "train/atomic_file.h"
#include "train/checkpoint.h"
#include "train/device_select.h"
#include "train/lr_schedule.h"
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

std::string eta_string(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<int64_t>(seconds + 0.5);
  char b[32];
  std::snprintf(b, sizeof b, "%lld:%02lld", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  return b;
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
  LogPair(const fs::path& out, const std::string& name, bool open) {
    if (!open) return;
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
    log << "train: resolved configuration (also in " << (out / "config.ini").string() << ")\n"
        << config_ini << "\n";
    write_file_atomic(out / "config.ini", config_ini);
  }
  if (ctx.world > 1)
    log << "dist: " << ctx.world << " ranks (" << ctx.comm->name() << "), global batch " << o.batch_size
        << " = " << join_counts(dist::shard_counts(o.batch_size, ctx.world)) << " rows per rank\n";
  return ctx;
}

LoopResult run_loop(Task& task, const LoopOptions& o, const RunContext& ctx) {
  LoopResult result;
  dist::Communicator& comm = *ctx.comm;
  const int rank = ctx.rank, world = ctx.world;
  const bool lead = ctx.lead();
  std::ostream& log = ctx.log();
  const fs::path out(o.out), ckpt_dir = out / "checkpoints";

  // ---- 2. the model on the device, before the optimizer: its moments are made beside each
  // parameter. Batches are copied there each step.
  nn::Module& model = task.model();
  model.train();
  model.to(ctx.device);
  AdamW opt(make_param_groups(model.named_parameters(), o.weight_decay, task.no_decay_names()),
            AdamWOptions{o.lr, o.beta1, o.beta2, o.eps, o.weight_decay});
  std::vector<Variable> params;
  for (const auto& g : opt.groups())
    for (const auto& p : g.params) params.push_back(p);
  const LrSchedule schedule{o.lr, o.warmup_steps, o.steps, o.min_lr_ratio};
  log << "model: " << task.describe() << "\n";

  // Synchronized batch norm: statistics over the global batch, as one process would have them.
  struct ReplicaSumReset {
    ~ReplicaSumReset() { nn::set_batch_norm_replica_sum({}); }
  } replica_sum_reset;
  if (world > 1)
    nn::set_batch_norm_replica_sum([&comm](const Variable& v) { return dist::all_reduce_sum(comm, v); });
  dist::GradientReducer reducer(comm, params, static_cast<int64_t>(o.dist_bucket_mb * 1024 * 1024));

  // ---- resume, or a fresh start
  int64_t step = 0;
  if (o.resume) {
    if (auto ck = load_latest_checkpoint(ckpt_dir)) {
      const nn::LoadReport rep = model.load_state_dict(ck->model, true);
      CW_CHECK(rep.ok(), ValueError, "--run.resume: ", ck->path.string(),
               " does not fit this model: ", rep.str());
      opt.load_state_tensors(ck->optimizer, ck->optimizer_step);
      // Each rank its own dropout stream (seed + rank; rank 0's is the one saved).
      default_generator().set_state(ck->state.seed + static_cast<uint64_t>(rank), ck->state.rng_offset);
      task.seek({ck->state.epoch, ck->state.batch_in_epoch});
      step = ck->state.step;
      if (lead)
        for (const std::string& name : std::vector<std::string>{"metrics", task.eval_log()}) {
          truncate_log(out / (name + ".csv"), step, true);
          truncate_log(out / (name + ".jsonl"), step, false);
        }
      log << "resume: " << ck->path.string() << " (step " << step << ")\n";
    } else {
      log << "resume: no checkpoint in " << ckpt_dir.string() << ", starting from step 0\n";
    }
  }
  if (step == 0) {
    if (lead)
      for (const std::string& name : std::vector<std::string>{"metrics", task.eval_log()})
        for (const char* ext : {".csv", ".jsonl"}) fs::remove(out / (name + ext));
    default_generator().manual_seed(o.seed + static_cast<uint64_t>(rank));  // dropout draws
  }
  // Every rank starts from rank 0's weights and buffers (equal already when built from the same
  // seed or checkpoint; the broadcast makes it so whatever happened before).
  if (world > 1) {
    std::vector<Tensor> state;
    for (const auto& [name, t] : model.state_dict()) state.push_back(t);
    dist::broadcast_tensors(comm, state, 0);
  }
  result.first_step = step;

  LogPair metrics_log(out, "metrics", lead), eval_log(out, task.eval_log(), lead);
  const auto evaluate = [&](int64_t at_step, int64_t max_items) {
    EvalRecord r = task.evaluate(at_step, max_items);
    std::vector<std::string> header = {"step"};
    std::string row = std::to_string(at_step);
    std::ostringstream cells;
    for (const auto& [name, value] : r.columns) {
      header.push_back(name);
      cells << ',' << value;
    }
    nlohmann::json j = r.json;
    j["step"] = at_step;
    j["max_items"] = max_items;
    eval_log.write(header, row + cells.str(), j);
    log << "eval @ step " << at_step << (max_items > 0 ? " (subset)" : "") << ": " << r.text << std::flush;
    result.evals.emplace_back(at_step, r);
    return r;
  };
  const auto save = [&](int64_t at_step) {
    if (!lead) return;  // one writer; the state is the same on every rank
    const DataPosition at = task.position();
    TrainerState st;
    st.step = at_step;
    st.epoch = at.epoch;
    st.batch_in_epoch = at.batch_in_epoch;
    st.seed = default_generator().seed();
    st.rng_offset = default_generator().offset();
    st.config_text = ctx.config_ini;
    save_checkpoint(ckpt_dir, model.state_dict(), opt, st, static_cast<int>(o.keep_last));
  };
  if (step == 0 && task.evaluates_at_start() && lead) evaluate(0, o.eval_max_items);

  // ---- 3. the loop
  const bool bar =
      o.progress == "bar" || (o.progress == "auto" && &log == &std::cout && isatty(STDOUT_FILENO));
  const dist::RowShard shard = dist::shard_rows(o.batch_size, rank, world);
  comm.reset_stats();
  const auto t_train = Clock::now();
  const int64_t first = step;
  // --run.stop_after: this process stops early, with a checkpoint to resume from.
  const int64_t stop_at = o.stop_after > 0 ? std::min(o.steps, first + o.stop_after) : o.steps;
  while (step < stop_at) {
    const auto t_step = Clock::now();
    StepTail tail;
    TaskLoss l;
    int64_t epoch = 0;
    try {
      epoch = task.load_batch();        // 1. this step's batch (every rank reads the whole batch)
      l = task.forward(step, shard);    // 2. forward: this rank's rows' part of the loss
      sum_over_ranks(comm, l.metrics);  //    (+ the other ranks' parts: the batch's loss)
      // 3-5. backward through world x the part, then the mean of the gradients over ranks (the
      // gradient of the batch's loss on every rank), clip, AdamW update.
      const Variable scaled = world > 1 ? ag::mul(l.loss, static_cast<double>(world)) : l.loss;
      tail = finish_step(scaled, l.metrics.at(0).value, params, o.grad_clip, opt, schedule, step, log,
                         [&] { reducer.average(); });
    } catch (const ValueError& e) {  // the losses report NaN / Inf embeddings as a ValueError
      log << "\ntrain: stopped at step " << step + 1 << ": " << e.what() << "\n";
      tail.stopped = true;
    }
    if (tail.stopped) {
      const auto ck = lead ? load_latest_checkpoint(ckpt_dir) : std::nullopt;
      log << "train: last good checkpoint: "
          << (ck ? ck->path.string() : std::string("none (no checkpoint was written yet)")) << "\n";
      result.stopped_on_nan = true;
      break;
    }
    ++step;
    const double loss_value = l.metrics.at(0).value;
    result.losses.push_back(loss_value);
    const double step_s = seconds_since(t_step);

    // The metrics row: step, epoch, the task's metrics, lr, gradient norm, seconds.
    std::vector<StepMetric> row_metrics = {{"epoch", "epoch", static_cast<double>(epoch), "%.0f", false}};
    row_metrics.insert(row_metrics.end(), l.metrics.begin(), l.metrics.end());
    row_metrics.push_back({"lr", "lr", tail.lr, "%.6g", false});
    row_metrics.push_back({"grad_norm", "grad_norm", tail.norm, "%.4f", false});
    row_metrics.push_back({"step_seconds", "step_seconds", step_s, "%.3f", false});
    std::vector<std::string> header = {"step"};
    std::string row = std::to_string(step);
    nlohmann::json j = {{"step", step}};
    for (const StepMetric& m : row_metrics) {
      header.push_back(m.column);
      row += ',';  // (not "," + cell: GCC 12 warns falsely on that concatenation, -Wrestrict)
      row += format_cell(m.format, m.value);
      j[m.key] = m.value;
    }
    metrics_log.write(header, row, j);

    const double per_step = seconds_since(t_train) / static_cast<double>(step - first);
    char rate[160];
    std::snprintf(rate, sizeof rate, "  lr %.2e  %.1f %s/s  ETA %s", tail.lr,
                  static_cast<double>(o.batch_size) / per_step, task.items_name(),
                  eta_string(per_step * static_cast<double>(o.steps - step)).c_str());
    const std::string line = "step " + std::to_string(step) + "/" + std::to_string(o.steps) + "  " +
                             task.progress(l.metrics) + rate;
    if (bar) {
      const int width = 24, done = static_cast<int>(width * step / o.steps);
      log << "\r[" << std::string(done, '=') << std::string(width - done, ' ') << "] " << line << "   "
          << std::flush;
      if (step == o.steps) log << "\n";
    } else if (step % o.log_every == 0 || step == o.steps || step == first + 1) {
      log << line << "\n" << std::flush;
    }

    const bool last = step == o.steps;
    if (o.eval_every > 0 && step % o.eval_every == 0 && !last) {
      if (lead) {
        if (bar) log << "\n";
        evaluate(step, o.eval_max_items);
      }
      if (world > 1) comm.barrier(0);  // the others wait for rank 0's evaluation, however long
    }
    if ((o.checkpoint_every > 0 && step % o.checkpoint_every == 0) || last || step == stop_at) save(step);
  }

  // ---- 4. the end
  result.train_seconds = seconds_since(t_train);
  result.steps_done = step;
  log << "train: " << step - first << " steps in " << result.train_seconds << " s" << task.summary() << "\n"
      << device_memory_line(ctx.device);
  result.comm = comm.stats();
  if (world > 1 && step > first) {
    const double steps_run = static_cast<double>(step - first);
    char line[256];
    std::snprintf(
        line, sizeof line,
        "dist: rank 0 spent %.3f s in %lld collectives (%.2f ms and %.3f MB per step, %lld gradient "
        "buckets)\n",
        result.comm.seconds, static_cast<long long>(result.comm.calls), 1e3 * result.comm.seconds / steps_run,
        static_cast<double>(result.comm.bytes) / 1e6 / steps_run, static_cast<long long>(reducer.buckets()));
    log << line;
  }
  if (result.stopped_on_nan || !lead) return result;
  if (step < o.steps) {
    log << "train: stopped after " << step - first
        << " steps (--run.stop_after); continue with --run.resume true\n";
    return result;
  }
  const EvalRecord final_eval = evaluate(step, 0);
  task.finish(step, result.train_seconds, final_eval, log);
  result.finished = true;
  return result;
}

}  // namespace cw::train
