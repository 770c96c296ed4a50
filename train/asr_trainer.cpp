// CTC pretraining of the speech tower (see asr_trainer.h).
#include "train/asr_trainer.h"

#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "autograd/functions.h"
#include "autograd/grad_mode.h"
#include "core/error.h"
#include "core/generator.h"
#include "core/ops.h"
#include "data/audio_fbank.h"
#include "data/audio_normalize.h"
#include "data/speech_loader.h"
#include "dist/communicator.h"
#include "losses/ctc_loss.h"
#include "models/conformer.h"
#include "train/adamw.h"
#include "train/char_vocab.h"
#include "train/checkpoint.h"
#include "train/device_select.h"
#include "train/image_run_util.h"
#include "train/lr_schedule.h"
#include "train/speech_text_data.h"
#include "train/speech_tower_file.h"
#include "train/step_tail.h"
#include "train/trainer.h"

namespace cw::train {
namespace fs = std::filesystem;

namespace {

// The tower and its CTC head: frames (B, T', D) -> per-frame character scores (B, T', V).
class AsrModel : public nn::Module {
 public:
  AsrModel(const models::ConformerConfig& c, int64_t vocab_size) {
    speech = register_module("speech", std::make_shared<models::Conformer>(c));
    head = register_module("head", std::make_shared<nn::Linear>(c.d_model, vocab_size));
  }
  // -> log-probabilities (T', B, V) for CTC, and the frame lengths (B) on the host.
  std::pair<Variable, Tensor> log_probs(const Variable& features, const Tensor& lengths) {
    const models::ConformerFrames f = speech->forward_frames(features, lengths);
    const Variable lp = ag::log_softmax(head->forward(f.hidden), -1);  // (B, T', V)
    return {ag::transpose(lp, 0, 1), f.lengths};
  }
  std::shared_ptr<models::Conformer> speech;
  std::shared_ptr<nn::Linear> head;
};

// Greedy transcripts of up to max_items validation utterances (evenly spaced; 0 = all), whole
// (no crop), and their CER against the references.
double validation_cer(AsrModel& model, const SpeechSplit& valid, const CharVocab& vocab, int64_t batch_size,
                      int64_t max_items, std::vector<std::string>* examples) {
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  const int64_t n = valid.size(), m = max_items > 0 ? std::min(max_items, n) : n;
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < m; ++i) rows.push_back(i * n / m);
  std::vector<std::string> hyp, ref;
  for (size_t b = 0; b < rows.size(); b += static_cast<size_t>(batch_size)) {
    std::vector<Tensor> feats;
    for (size_t i = b; i < std::min(rows.size(), b + static_cast<size_t>(batch_size)); ++i) {
      feats.push_back(utterance_cmvn(valid.features->features(rows[i])));
      ref.push_back(
          normalize_transcript(valid.manifest().utterances()[static_cast<size_t>(rows[i])].transcript));
    }
    const FeatureBatch fb = pad_features(feats);
    const auto [lp, lengths] = model.log_probs(Variable(fb.features.to(model.device())), fb.lengths);
    const Tensor scores = lp.data().to(Device::cpu());  // (T', B, V)
    const auto len = lengths.to_vector<int64_t>();
    for (int64_t k = 0; k < scores.size(1); ++k)
      hyp.push_back(vocab.decode_greedy(scores.select(1, k), len[static_cast<size_t>(k)]));
  }
  model.train(was_training);
  if (examples)
    for (size_t i = 0; i < std::min<size_t>(3, hyp.size()); ++i)
      examples->push_back("\"" + ref[i] + "\" -> \"" + hyp[i] + "\"");
  return character_error_rate(hyp, ref);
}

CharVocab vocab_of(const SpeechSplit& train) {
  std::vector<std::string> transcripts;
  for (const auto& u : train.manifest().utterances()) transcripts.push_back(u.transcript);
  return CharVocab::from_transcripts(transcripts);
}

}  // namespace

SpeechAsrResult run_speech_asr(const TrainOptions& o, std::ostream& log) {
  SpeechAsrResult result;
  if (o.threads > 0) omp_set_num_threads(static_cast<int>(o.threads));
  // One process: recognition pretraining has no data-parallel path (an MPI launch would run
  // copies that overwrite each other's files).
  CW_CHECK(dist::world(o.dist_backend, o.dist_timeout).world_size() == 1, OptionError,
           "--task speech_asr runs as one process; launch it without mpirun/srun");
  const Device device = select_device(o.device);  // before any data work: a missing GPU fails fast
  apply_cuda_options(device, o.conv, o.tf32);
  const fs::path out(o.out), ckpt_dir = out / "checkpoints";
  fs::create_directories(out);
  log << "train: resolved configuration (also in " << (out / "config.ini").string() << ")\n"
      << o.to_ini() << "\n";
  write_text_file_atomic(out / "config.ini", o.to_ini());

  ensure_corpus(o, log);
  const SpeechSplit train = load_speech_split(o, "train", log);
  const SpeechSplit valid = load_speech_split(o, "valid", log);
  const CharVocab vocab = vocab_of(train);

  manual_seed(o.seed);
  // The projection head's width is the frozen text tower's (all-MiniLM-L6-v2: 384); recognition
  // never uses it and the tower file leaves it out.
  const models::ConformerConfig cfg = speech_tower_config(o, train.features->num_bins(), 384);
  AsrModel model(cfg, vocab.size());
  model.speech->proj->requires_grad_(false);
  model.train();
  model.to(device);  // before the optimizer, so that its moments are made on the device too
  AdamW opt(make_param_groups(model.named_parameters(), o.weight_decay),
            AdamWOptions{o.lr, o.beta1, o.beta2, o.eps, o.weight_decay});
  std::vector<Variable> params;
  for (const auto& g : opt.groups())
    for (const auto& p : g.params) params.push_back(p);
  const LrSchedule schedule{o.lr, o.warmup_steps, o.steps, o.min_lr_ratio};
  log << "model: Conformer d_model " << cfg.d_model << ", " << cfg.num_layers << " blocks + CTC head over "
      << vocab.size() << " symbols (blank + \"" << vocab.chars() << "\"): " << model.num_parameters()
      << " parameters\n";

  SpeechLoaderOptions lo;
  lo.batch_size = o.batch_size;
  lo.seed = o.seed;
  lo.spec_augment = o.spec_augment;
  lo.bucket_by_length = o.bucket_by_length;
  lo.max_frames = o.max_frames;
  lo.num_workers = static_cast<int>(o.loader_workers);
  SpeechLoader loader(train.features, lo);
  if (o.max_frames > 0)
    log << "note: --data.max_frames " << o.max_frames
        << " crops long utterances but keeps their whole transcripts; 0 (no crop) suits recognition\n";
  losses::CtcOptions ctc;
  ctc.zero_infinity = true;  // a transcript longer than its (cropped) frames allow adds nothing

  int64_t step = 0;
  if (o.resume) {
    if (auto ck = load_latest_checkpoint(ckpt_dir)) {
      const nn::LoadReport rep = model.load_state_dict(ck->model, true);
      CW_CHECK(rep.ok(), ValueError, "--run.resume: ", ck->path.string(),
               " does not fit this model: ", rep.str());
      opt.load_state_tensors(ck->optimizer, ck->optimizer_step);
      default_generator().set_state(ck->state.seed, ck->state.rng_offset);
      loader.seek(ck->state.epoch, ck->state.batch_in_epoch);
      step = ck->state.step;
      log << "resume: " << ck->path.string() << " (step " << step << ")\n";
    }
  }
  if (step == 0) default_generator().manual_seed(o.seed);  // dropout draws
  std::ofstream metrics(out / "metrics.csv", step == 0 ? std::ios::trunc : std::ios::app);
  if (step == 0) metrics << "step,epoch,loss,infeasible,lr,grad_norm,step_seconds\n";
  std::ofstream cer_csv(out / "cer.csv", step == 0 ? std::ios::trunc : std::ios::app);
  if (step == 0) cer_csv << "step,valid_cer,utterances\n";
  auto run_eval = [&](int64_t at_step, int64_t max_items) {
    const auto t0 = ImageClock::now();
    std::vector<std::string> examples;
    const double cer = validation_cer(model, valid, vocab, o.eval_batch_size, max_items, &examples);
    const int64_t n = max_items > 0 ? std::min(max_items, valid.size()) : valid.size();
    cer_csv << at_step << ',' << cer << ',' << n << std::endl;
    result.cer.emplace_back(at_step, cer);
    char line[160];
    std::snprintf(line, sizeof line, "eval @ step %lld: validation CER %.4f on %lld utterances (%.1f s)\n",
                  static_cast<long long>(at_step), cer, static_cast<long long>(n), seconds_since(t0));
    log << line;
    for (const std::string& e : examples) log << "  " << e << "\n";
    log << std::flush;
    return cer;
  };

  const auto t_train = ImageClock::now();
  const int64_t first = step;
  const int64_t stop_at = o.stop_after > 0 ? std::min(o.steps, first + o.stop_after) : o.steps;
  while (step < stop_at) {
    const auto t_step = ImageClock::now();
    const SpeechBatch batch = loader.next();
    std::vector<std::vector<int64_t>> targets;
    for (const std::string& t : batch.transcripts) targets.push_back(vocab.encode(t));
    const auto [lp, lengths] = model.log_probs(Variable(batch.features.to(device)), batch.lengths);
    const losses::CtcOutput c = losses::ctc_loss(lp, targets, lengths.to_vector<int64_t>(), ctc);
    const double loss_value = c.loss.data().to(Device::cpu()).item();
    int64_t infeasible = 0;
    for (const double r : c.row_losses) infeasible += std::isinf(r) ? 1 : 0;
    const StepTail tail = finish_step(c.loss, loss_value, params, o.grad_clip, opt, schedule, step, log);
    if (tail.stopped) {
      result.stopped_on_nan = true;
      break;
    }
    const double lr = tail.lr, norm = tail.norm;
    ++step;
    result.losses.push_back(loss_value);
    char row[200];
    std::snprintf(row, sizeof row, "%lld,%lld,%.6f,%lld,%.6g,%.4f,%.3f", static_cast<long long>(step),
                  static_cast<long long>(batch.epoch), loss_value, static_cast<long long>(infeasible), lr,
                  norm, seconds_since(t_step));
    metrics << row << std::endl;
    if (step % o.log_every == 0 || step == o.steps || step == first + 1) {
      const double per_step = seconds_since(t_train) / static_cast<double>(step - first);
      char line[200];
      std::snprintf(line, sizeof line, "step %lld/%lld  ctc %.4f  lr %.2e  %.1f utt/s\n",
                    static_cast<long long>(step), static_cast<long long>(o.steps), loss_value, lr,
                    static_cast<double>(o.batch_size) / per_step);
      log << line << std::flush;
    }
    const bool last = step == o.steps;
    if (o.eval_every > 0 && step % o.eval_every == 0 && !last) run_eval(step, o.eval_max_items);
    if ((o.checkpoint_every > 0 && step % o.checkpoint_every == 0) || last || step == stop_at) {
      TrainerState st;
      st.step = step;
      st.epoch = loader.epoch();
      st.batch_in_epoch = loader.batch_in_epoch();
      st.seed = default_generator().seed();
      st.rng_offset = default_generator().offset();
      st.config_text = o.to_ini();
      save_checkpoint(ckpt_dir, model.state_dict(), opt, st, static_cast<int>(o.keep_last));
    }
  }
  result.train_seconds = seconds_since(t_train);
  result.steps_done = step;
  log << "train: " << step - first << " steps in " << result.train_seconds << " s\n"
      << device_memory_line(device);
  if (result.stopped_on_nan) return result;
  if (step < o.steps) {
    log << "train: stopped after " << step - first
        << " steps (--run.stop_after); continue with --run.resume true\n";
    return result;
  }
  const double cer = run_eval(step, 0);
  result.tower = out / "speech_tower.safetensors";
  save_speech_tower(result.tower, *model.speech, vocab, step, cer);
  nlohmann::json j = {{"steps", step},
                      {"valid_cer", cer},
                      {"train_seconds", result.train_seconds},
                      {"tower", result.tower.string()},
                      {"vocab", vocab.chars()}};
  for (const auto& [s, v] : result.cer) j["cer"].push_back({{"step", s}, {"valid_cer", v}});
  write_text_file_atomic(out / "asr_final.json", j.dump(2) + "\n");
  log << "speech tower: " << result.tower.string()
      << " (start a speech-text run from it with --model.speech_init)\n";
  return result;
}

double evaluate_speech_asr_run(const fs::path& run_dir, const fs::path& checkpoint,
                               const std::string& json_out, std::ostream& out) {
  const fs::path config = run_dir / "config.ini";
  CW_CHECK(fs::exists(config), ValueError, "--run ", run_dir.string(), ": no config.ini");
  const std::string cfg_arg = config.string();
  const char* args[] = {"train", "--config", cfg_arg.c_str()};
  std::ostringstream quiet;
  const TrainOptions o = parse_train_options(3, args, quiet).options;
  const LoadedCheckpoint ck = checkpoint.empty() ? [&] {
    auto latest = load_latest_checkpoint(run_dir / "checkpoints");
    CW_CHECK(latest.has_value(), ValueError, "--run ", run_dir.string(), ": no checkpoint");
    return *latest;
  }()
                                                 : load_checkpoint(checkpoint);
  const SpeechSplit train = load_speech_split(o, "train", quiet);
  const SpeechSplit valid = load_speech_split(o, "valid", quiet);
  const CharVocab vocab = vocab_of(train);  // as the run built it: from the same transcripts
  AsrModel model(speech_tower_config(o, train.features->num_bins(), 384), vocab.size());
  const nn::LoadReport rep = model.load_state_dict(ck.model, true);
  CW_CHECK(rep.ok(), ValueError, ck.path.string(), " does not fit the run's model: ", rep.str());
  std::vector<std::string> examples;
  const double cer = validation_cer(model, valid, vocab, o.eval_batch_size, 0, &examples);
  out << "validation CER of " << ck.path.string() << " (step " << ck.state.step << "): " << cer << " on "
      << valid.size() << " utterances\n";
  for (const std::string& e : examples) out << "  " << e << "\n";
  const nlohmann::json j = {{"checkpoint", ck.path.string()},
                            {"step", ck.state.step},
                            {"valid_cer", cer},
                            {"utterances", valid.size()}};
  out << j.dump() << "\n";
  if (!json_out.empty()) write_text_file_atomic(json_out, j.dump(2) + "\n");
  return cer;
}

}  // namespace cw::train
