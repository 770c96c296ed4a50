// The speech-text training loop (see trainer.h).
#include "train/trainer.h"

#include <omp.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "autograd/functions.h"
#include "core/error.h"
#include "core/generator.h"
#include "core/json_read.h"
#include "core/ops.h"
#include "data/model_files.h"
#include "data/speech_loader.h"
#include "dist/communicator.h"
#include "dist/differentiable.h"
#include "dist/gradient_reducer.h"
#include "losses/contrastive_block.h"
#include "losses/contrastive_loss.h"
#include "nn/batch_norm.h"
#include "train/adamw.h"
#include "train/checkpoint.h"
#include "train/device_select.h"
#include "train/grad_clip.h"
#include "train/lr_schedule.h"
#include "train/speech_tower_file.h"
#include "train/subprocess.h"
#include "train/verdict.h"

namespace cw::train {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

void write_text_atomic(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp-" + std::to_string(getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    CW_CHECK(f.good(), Error, "cannot write '", tmp.string(), "'");
    f << text;
    f.flush();
    CW_CHECK(f.good(), Error, "write to '", tmp.string(), "' failed");
  }
  fs::rename(tmp, path);
}

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
  write_text_atomic(path, kept);
}

std::string join_counts(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? " + " : "") + std::to_string(v[i]);
  return s;
}

std::string eta_string(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<int64_t>(seconds + 0.5);
  char b[32];
  std::snprintf(b, sizeof b, "%lld:%02lld", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  return b;
}

// Loss curve, zero-shot accuracy over steps and a similarity heat map, as PNGs (gnuplot, when
// installed: plots are a convenience, never a reason to fail a finished run).
void render_plots(const fs::path& out, std::ostream& log) {
  if (!fs::exists("/usr/bin/gnuplot")) {
    log << "plots: gnuplot not installed, skipped (apt install gnuplot-nox)\n";
    return;
  }
  std::ostringstream gp;
  gp << "set terminal pngcairo size 900,500 noenhanced\nset datafile separator ','\nset key outside\n"
     << "set output 'loss.png'\nset title 'training loss'\nset xlabel 'step'\nset ylabel 'loss'\n"
     << "plot 'metrics.csv' using 1:3 with lines title 'loss', '' using 1:4 with lines title 'speech->text', "
        "'' using 1:5 with lines title 'text->speech'\n";
  if (fs::exists(out / "eval.csv"))
    gp << "set output 'zero_shot.png'\nset title 'zero-shot accuracy'\nset ylabel 'accuracy'\nset yrange "
          "[0:1]\n"
       << "plot 'eval.csv' using 1:2 with linespoints title 'intent', '' using 1:3 with linespoints title "
          "'keywords', "
          "'' using 1:4 with linespoints title 'keywords (human)', '' using 1:5 with linespoints title 'R@1 "
          "speech->text'\n"
       << "set autoscale y\n";
  if (fs::exists(out / "similarity.dat"))
    gp << "set datafile separator whitespace\nset output 'similarity.png'\nset size ratio -1\n"
       << "set title 'cosine, held-out speech (rows) vs transcripts (columns)'\nset xlabel 'transcript'\n"
       << "set ylabel 'utterance'\nset yrange [] reverse\nplot 'similarity.dat' matrix with image notitle\n";
  write_text_atomic(out / "plots.gp", gp.str());
  if (run_process({"/usr/bin/gnuplot", "plots.gp"}, out) == 0)
    log << "plots: " << (out / "loss.png").string() << ", zero_shot.png, similarity.png\n";
  else
    log << "plots: gnuplot failed (see " << (out / "plots.gp").string() << ")\n";
}

void write_similarity(const fs::path& out, models::SpeechTextModel& model, const SpeechTextData& d,
                      int64_t batch_size) {
  const int64_t n = std::min<int64_t>(32, d.retrieval.size());
  if (n == 0) return;
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < n; ++i) rows.push_back(i);
  const Tensor p = unit_rows(embed_split(model, d.retrieval, rows, batch_size));
  const Tensor q = unit_rows(d.retrieval_text.narrow(0, 0, n));
  const Tensor s = ops::matmul(p, q.t()).contiguous();
  std::ostringstream f;
  f.precision(4);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) f << (j ? " " : "") << s.data<double>()[i * n + j];
    f << "\n";
  }
  write_text_atomic(out / "similarity.dat", f.str());
}

}  // namespace

TrainResult run_training(const TrainOptions& o, std::ostream& lead_log) {
  TrainResult result;
  const auto t_prepare = Clock::now();
  if (o.threads > 0) omp_set_num_threads(static_cast<int>(o.threads));
  // Data parallelism (dist/): in a world of one (no launcher) every collective below is the
  // identity and the loop is the single-process one. Rank 0 alone logs and writes files.
  dist::Communicator& comm = dist::world(o.dist_backend, o.dist_timeout);
  const int rank = comm.rank(), world = comm.world_size();
  const bool lead = rank == 0;
  std::ostream null_log(nullptr);  // ranks > 0: nothing to print
  std::ostream& log = lead ? lead_log : null_log;
  // Checked first, before any data is prepared: a missing GPU is one error at start. Under a
  // launcher, `cuda` means one GPU per rank: the rank's local rank on its machine (an explicit
  // cuda:N is taken as given, e.g. with CUDA_VISIBLE_DEVICES set per rank). The collectives then
  // copy device tensors through the host (dist/mpi_communicator.h); NCCL is not wired yet.
  const std::string device_spec =
      world > 1 && o.device == "cuda" ? "cuda:" + std::to_string(dist::local_rank()) : o.device;
  const Device device = select_device(device_spec);
  apply_cuda_options(device, o.conv, o.tf32);
  CW_CHECK(o.batch_size >= world, OptionError, "--optim.batch_size (", o.batch_size,
           ") must be at least the ", world, " ranks: each rank takes a slice of the global batch");
  const fs::path out(o.out);
  const fs::path ckpt_dir = out / "checkpoints";
  if (lead) {
    fs::create_directories(out);
    log << "train: resolved configuration (also in " << (out / "config.ini").string() << ")\n"
        << o.to_ini() << "\n";
    write_text_atomic(out / "config.ini", o.to_ini());
  }
  if (world > 1)
    log << "dist: " << world << " ranks (" << comm.name() << "), global batch " << o.batch_size << " = "
        << join_counts(dist::shard_counts(o.batch_size, world)) << " rows per rank\n";

  // ---- frozen text tower and data. Rank 0 first: it may generate the corpus and write the
  // feature and embedding caches, which the other ranks then read (no timeout: that can take long).
  const FrozenTextTower text = FrozenTextTower::load(
      find_minilm_dir(o.text_model.empty() ? std::nullopt : std::optional<fs::path>(o.text_model)));
  if (!lead) comm.barrier(0);
  SpeechTextData prepared = prepare_speech_text_data(o, text, log);
  if (lead && world > 1) comm.barrier(0);

  // ---- model and optimizer (seeded: the same seed gives the same initial weights)
  manual_seed(o.seed);
  SpeechTextData data = std::move(prepared);
  SpeechModel built = build_speech_model(o, data, log);
  models::SpeechTextModel& model = *built.model;
  model.train();
  // The trained tower, its logit scale, and the optimizer's moments (allocated below, beside each
  // parameter) live on the device; batches are copied there each step, the frozen embeddings
  // stay cached on the host and go over with their batch.
  model.to(device);
  AdamW opt(make_param_groups(model.named_parameters(), o.weight_decay, {"logit_scale"}),
            AdamWOptions{o.lr, o.beta1, o.beta2, o.eps, o.weight_decay});
  std::vector<Variable> params;
  for (const auto& g : opt.groups())
    for (const auto& p : g.params) params.push_back(p);
  const LrSchedule schedule{o.lr, o.warmup_steps, o.steps, o.min_lr_ratio};
  log << "model: " << built.description << "\nloss: " << losses::describe(o.loss) << "\n";

  SpeechLoaderOptions lo;
  lo.batch_size = o.batch_size;
  lo.seed = o.seed;
  lo.spec_augment = o.spec_augment;
  lo.bucket_by_length = o.bucket_by_length;
  // --data.max_frames counts 10 ms mel frames; cached Whisper positions are 20 ms each.
  lo.max_frames = o.max_frames / built.frames_per_input;
  lo.normalization = data.train.cmvn ? "utterance" : "none";
  lo.num_workers = static_cast<int>(o.loader_workers);
  SpeechLoader loader(data.train.features, lo);

  // Synchronized batch norm: statistics over the global batch, as one process would have them.
  struct ReplicaSumReset {
    ~ReplicaSumReset() { nn::set_batch_norm_replica_sum({}); }
  } replica_sum_reset;
  if (world > 1)
    nn::set_batch_norm_replica_sum([&comm](const Variable& v) { return dist::all_reduce_sum(comm, v); });
  dist::GradientReducer reducer(comm, params, static_cast<int64_t>(o.dist_bucket_mb * 1024 * 1024));

  // ---- resume
  int64_t step = 0;
  if (o.resume) {
    if (auto ck = load_latest_checkpoint(ckpt_dir)) {
      const nn::LoadReport rep = model.load_state_dict(ck->model, true);
      CW_CHECK(rep.ok(), ValueError, "--run.resume: ", ck->path.string(),
               " does not fit this model: ", rep.str());
      opt.load_state_tensors(ck->optimizer, ck->optimizer_step);
      // Each rank its own dropout stream (seed + rank; rank 0's is the one saved).
      default_generator().set_state(ck->state.seed + static_cast<uint64_t>(rank), ck->state.rng_offset);
      loader.seek(ck->state.epoch, ck->state.batch_in_epoch);
      step = ck->state.step;
      if (lead) {
        for (const char* f : {"metrics.csv", "eval.csv"}) truncate_log(out / f, step, true);
        for (const char* f : {"metrics.jsonl", "eval.jsonl"}) truncate_log(out / f, step, false);
      }
      log << "resume: " << ck->path.string() << " (step " << step << ")\n";
    } else {
      log << "resume: no checkpoint in " << ckpt_dir.string() << ", starting from step 0\n";
    }
  }
  if (step == 0) {
    if (lead)
      for (const char* f : {"metrics.csv", "metrics.jsonl", "eval.csv", "eval.jsonl"}) fs::remove(out / f);
    default_generator().manual_seed(o.seed +
                                    static_cast<uint64_t>(rank));  // dropout draws start from the run seed
  }
  // Every rank starts from rank 0's weights and buffers (equal already when built from the same
  // seed or checkpoint; the broadcast makes it so whatever happened before).
  if (world > 1) {
    std::vector<Tensor> state;
    for (const auto& [name, t] : model.state_dict()) state.push_back(t);
    dist::broadcast_tensors(comm, state, 0);
  }
  result.first_step = step;
  result.prepare_seconds = since(t_prepare);

  // Rank 0's logs; the other ranks' streams stay closed (writes to them are dropped).
  std::ofstream metrics_csv, metrics_jsonl, eval_csv, eval_jsonl;
  if (lead) {
    metrics_csv.open(out / "metrics.csv", std::ios::app);
    metrics_jsonl.open(out / "metrics.jsonl", std::ios::app);
    eval_csv.open(out / "eval.csv", std::ios::app);
    eval_jsonl.open(out / "eval.jsonl", std::ios::app);
  }
  if (lead && fs::file_size(out / "metrics.csv") == 0)
    metrics_csv
        << "step,epoch,loss,loss_speech_to_text,loss_text_to_speech,acc_speech_to_text,acc_text_to_speech,"
           "pos_sim,neg_sim,logit_scale,lr,grad_norm,step_seconds\n";
  if (lead && fs::file_size(out / "eval.csv") == 0)
    eval_csv
        << "step,intent_acc,keyword_acc,keyword_human_acc,retrieval_s2t_r1,retrieval_t2s_r1,structure_corr,"
           "intent_template_std\n";

  auto run_eval = [&](int64_t at_step, int64_t max_items) {
    EvalResult r = evaluate(model, data, o.eval_batch_size, max_items);
    eval_csv << at_step << ',' << r.intent.ensemble_accuracy << ',' << r.keywords.ensemble_accuracy << ','
             << r.keywords_human.ensemble_accuracy << ',' << r.retrieval.speech_to_text_r1 << ','
             << r.retrieval.text_to_speech_r1 << ',' << r.structure_correlation << ',' << r.intent.std
             << std::endl;
    nlohmann::json j = r.to_json();
    j["step"] = at_step;
    j["max_items"] = max_items;
    eval_jsonl << j.dump() << std::endl;
    return r;
  };
  auto save = [&](int64_t at_step) {
    if (!lead) return;  // one writer; the state is the same on every rank
    TrainerState st;
    st.step = at_step;
    st.epoch = loader.epoch();
    st.batch_in_epoch = loader.batch_in_epoch();
    st.seed = default_generator().seed();
    st.rng_offset = default_generator().offset();
    st.config_text = o.to_ini();
    save_checkpoint(ckpt_dir, model.state_dict(), opt, st, static_cast<int>(o.keep_last));
  };

  // ---- the loop
  const bool bar =
      o.progress == "bar" || (o.progress == "auto" && &log == &std::cout && isatty(STDOUT_FILENO));
  const dist::RowShard shard = dist::shard_rows(o.batch_size, rank, world);
  const std::vector<int64_t> shard_sizes = dist::shard_counts(o.batch_size, world);
  comm.reset_stats();
  const auto t_train = Clock::now();
  const int64_t first = step;
  // --run.stop_after: this process stops early, with a checkpoint to resume from.
  const int64_t stop_at = o.stop_after > 0 ? std::min(o.steps, first + o.stop_after) : o.steps;
  while (step < stop_at) {
    const auto t_step = Clock::now();
    // Every rank reads the same global batch (a pure function of seed, epoch and batch) and
    // keeps its contiguous slice of rows, padded to the global batch's length as one process's.
    const SpeechBatch batch = loader.next();
    const Tensor idx = ops::from_vector(batch.indices, {static_cast<int64_t>(batch.indices.size())});
    const Variable q(
        ops::index_select(data.train_text, 0, idx).to(device));  // (B, D) frozen, no grad, all rows
    double loss_value = NAN, norm = NAN;
    losses::ContrastiveMetrics m;
    std::string failure;
    try {
      if (world == 1) {
        // lengths stay on the host: the tower reads them to build its masks.
        const Variable p = model.embed_speech(Variable(batch.features.to(device)), batch.lengths);  // (B, D)
        const losses::ContrastiveOutput lo_out = losses::contrastive_loss(p, q, model.logit_scale, o.loss);
        loss_value = lo_out.loss.data().to(Device::cpu()).item();
        m = lo_out.metrics;
        if (std::isfinite(loss_value)) {
          lo_out.loss.backward();
          norm = o.grad_clip > 0 ? clip_grad_norm(params, o.grad_clip) : grad_norm(params);
        }
      } else {
        const Tensor feats = batch.features.narrow(0, shard.offset, shard.count).contiguous().to(device);
        const Tensor lens = batch.lengths.narrow(0, shard.offset, shard.count).contiguous();
        const Variable p_local = model.embed_speech(Variable(feats), lens);        // (B_r, D)
        const Variable p_all = dist::all_gather_rows(comm, p_local, shard_sizes);  // (B, D)
        // This rank's row block of the global-batch loss; the blocks sum to the global loss.
        const losses::ContrastiveOutput lo_out =
            losses::contrastive_loss_block(p_all, q, model.logit_scale, o.loss, shard.offset, shard.count);
        m = lo_out.metrics;
        Tensor sums =
            ops::from_vector(std::vector<double>{lo_out.loss.data().to(Device::cpu()).item(), m.loss_p2q,
                                                 m.loss_q2p, m.acc_p2q, m.acc_q2p, m.pos_sim, m.neg_sim},
                             {7});
        comm.all_reduce(sums, dist::ReduceOp::Sum);
        const std::vector<double> g = sums.to_vector<double>();
        loss_value = g[0];
        m.loss_p2q = g[1];
        m.loss_q2p = g[2];
        m.acc_p2q = g[3];
        m.acc_q2p = g[4];
        m.pos_sim = g[5];
        m.neg_sim = g[6];
        if (std::isfinite(loss_value)) {
          // world x the block's loss, then the mean of the gradients over ranks: the gradient of
          // the global loss, on every rank.
          ag::mul(lo_out.loss, static_cast<double>(world)).backward();
          reducer.average();
          norm = o.grad_clip > 0 ? clip_grad_norm(params, o.grad_clip) : grad_norm(params);
        }
      }
    } catch (const ValueError& e) {
      failure = e.what();  // the loss reports NaN / Inf embeddings as a ValueError
    }
    if (!std::isfinite(loss_value) || !std::isfinite(norm)) {
      const auto ck = lead ? load_latest_checkpoint(ckpt_dir) : std::nullopt;
      log << "\ntrain: stopped at step " << step + 1 << ": "
          << (failure.empty() ? (!std::isfinite(loss_value)
                                     ? "the loss is not finite (" + std::to_string(loss_value) + ")"
                                     : "the gradient norm is not finite")
                              : failure)
          << ". Try a lower --optim.lr or --optim.grad_clip. Last good checkpoint: "
          << (ck ? ck->path.string() : std::string("none (no checkpoint was written yet)")) << "\n";
      result.stopped_on_nan = true;
      break;
    }
    const double lr = schedule.at(step);
    opt.step(lr);
    opt.zero_grad();
    ++step;
    result.losses.push_back(loss_value);
    const double step_s = since(t_step);

    char row[512];
    std::snprintf(row, sizeof row, "%lld,%lld,%.6f,%.6f,%.6f,%.4f,%.4f,%.4f,%.4f,%.3f,%.6g,%.4f,%.3f",
                  static_cast<long long>(step), static_cast<long long>(batch.epoch), loss_value, m.loss_p2q,
                  m.loss_q2p, m.acc_p2q, m.acc_q2p, m.pos_sim, m.neg_sim, m.logit_scale, lr, norm, step_s);
    metrics_csv << row << std::endl;
    metrics_jsonl << nlohmann::json{{"step", step},
                                    {"epoch", batch.epoch},
                                    {"loss", loss_value},
                                    {"loss_s2t", m.loss_p2q},
                                    {"loss_t2s", m.loss_q2p},
                                    {"acc_s2t", m.acc_p2q},
                                    {"acc_t2s", m.acc_q2p},
                                    {"pos_sim", m.pos_sim},
                                    {"neg_sim", m.neg_sim},
                                    {"logit_scale", m.logit_scale},
                                    {"lr", lr},
                                    {"grad_norm", norm},
                                    {"step_seconds", step_s}}
                         .dump()
                  << std::endl;

    const double elapsed = since(t_train);
    const double per_step = elapsed / static_cast<double>(step - first);
    const double utt_s = static_cast<double>(o.batch_size) / per_step;
    char line[256];
    std::snprintf(line, sizeof line,
                  "step %lld/%lld  loss %.4f  acc %.3f  lr %.2e  scale %.1f  %.1f utt/s  ETA %s",
                  static_cast<long long>(step), static_cast<long long>(o.steps), loss_value, m.acc_p2q, lr,
                  m.logit_scale, utt_s, eta_string(per_step * static_cast<double>(o.steps - step)).c_str());
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
        const EvalResult r = run_eval(step, o.eval_max_items);
        log << (bar ? "\n" : "") << "eval @ step " << step << (o.eval_max_items ? " (subset)" : "") << " ("
            << r.seconds << " s):\n"
            << r.table() << std::flush;
      }
      if (world > 1) comm.barrier(0);  // the others wait for rank 0's evaluation, however long
    }
    if ((o.checkpoint_every > 0 && step % o.checkpoint_every == 0) || last || step == stop_at) save(step);
  }
  result.train_seconds = since(t_train);
  result.steps_done = step;
  const SpeechLoaderStats ls = loader.stats();
  log << "train: " << step - first << " steps in " << result.train_seconds
      << " s; the loader kept the trainer waiting " << ls.wait_seconds << " s in all\n"
      << device_memory_line(device);
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

  result.final_eval = run_eval(step, 0);
  const Verdict verdict = make_verdict(result.final_eval, data, text);
  nlohmann::json final_json = result.final_eval.to_json();
  final_json["step"] = step;
  final_json["config"] = o.to_ini();
  final_json["verdict"] = verdict.json;
  write_text_atomic(out / "eval_final.json", final_json.dump(2) + "\n");
  log << "zero-shot results after " << step << " steps (" << result.final_eval.seconds << " s):\n"
      << result.final_eval.table() << "results: " << (out / "eval_final.json").string() << "\n"
      << verdict.text;
  if (o.plots) {
    write_similarity(out, model, data, o.eval_batch_size);
    metrics_csv.flush();
    eval_csv.flush();
    render_plots(out, log);
  }
  return result;
}

}  // namespace cw::train
