// `intl pretrain cifar10|cifar100 --data-dir DIR`: INTL pre-training with the paper's recipe (SPEC 3.4),
// every number an option (or a key of --config FILE.json; experiments/cifar10.json is the paper's run).
// Exit status: 0 done, 1 failure or divergence, 2 bad options, 130 stopped by Ctrl-C (resumable).
#include <cstdio>

#include "cli/command.h"
#include "engine/error.h"
#include "train/pretrain.h"

namespace intl::cli {

void add_pretrain_command(CLI::App& app) {
  auto o = std::make_shared<train::PretrainOptions>();
  auto common = std::make_shared<CommonOptions>();
  auto* cmd = app.add_subcommand("pretrain", "self-supervised pre-training with INTL (SPEC 3.4), then kNN and linear "
                                             "evaluation");
  cmd->add_option("dataset", o->dataset, "cifar10 | cifar100")
      ->required()
      ->check(CLI::IsMember({"cifar10", "cifar100", "imagenet100", "imagenet"}));
  cmd->add_option("--data-dir", o->data_dir, "folder holding the dataset's binary files")->required();
  cmd->add_option("--arch", o->model.arch, "backbone: resnet18 | resnet34 | resnet50")->capture_default_str();
  cmd->add_option("--stem", o->model.stem, "cifar (conv 3x3, no max pool) | imagenet")->capture_default_str();
  cmd->add_option("--base-width", o->model.base_width, "channels of the stem and layer1 (64 is ResNet-18)")
      ->capture_default_str();
  cmd->add_option("--projector", o->model.projector, "projector layer widths, e.g. 2048,2048,2048")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--T", o->T, "IterNorm iterations")->capture_default_str();
  cmd->add_option("--beta", o->beta, "trace-loss weight (0: 0.01 (log2(batch-size) - 3), 0.05 at 256)")
      ->capture_default_str();
  cmd->add_option("--epochs", o->epochs, "training epochs")->capture_default_str();
  cmd->add_option("--batch-size", o->batch_size, "images per step (two views each)")->capture_default_str();
  cmd->add_option("--lr", o->lr, "learning rate per 256 images (the rate used is lr x batch-size / 256)")
      ->capture_default_str();
  cmd->add_option("--momentum", o->momentum, "SGD momentum")->capture_default_str();
  cmd->add_option("--weight-decay", o->weight_decay, "SGD weight decay (on every parameter)")->capture_default_str();
  cmd->add_option("--warmup-epochs", o->warmup_epochs, "linear warm-up, per step, over this many epochs")
      ->capture_default_str();
  cmd->add_option("--final-lr-ratio", o->final_lr_ratio, "cosine decay ends at this fraction of the base rate")
      ->capture_default_str();
  cmd->add_option("--image-size", o->image_size, "side of the training crops and evaluation images")
      ->capture_default_str();
  cmd->add_option("--train-images", o->train_images, "use the first N training images (0: all)")->capture_default_str();
  cmd->add_option("--test-images", o->test_images, "use the first N test images (0: all)")->capture_default_str();
  cmd->add_option("--workers", o->workers, "data loader threads")->capture_default_str();
  cmd->add_option("--eval-every", o->eval_every, "kNN accuracy every N epochs (0: only at the end)")
      ->capture_default_str();
  cmd->add_option("--knn-k", o->knn_k, "k of the kNN accuracy")->capture_default_str();
  cmd->add_option("--final-eval", o->final_eval, "evaluations after training: knn, linear, or none")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--linear-epochs", o->linear_epochs, "epochs of the linear classifier")->capture_default_str();
  cmd->add_option("--keep", o->keep, "checkpoints kept (the newest)")->capture_default_str();
  cmd->add_flag("--resume", o->resume, "continue the run in --out from its newest checkpoint");
  cmd->add_option("--resume-from", o->resume_from, "continue from this checkpoint (with --out)");
  cmd->add_option("--log-every", o->log_every, "seconds between progress lines when not on a terminal")
      ->capture_default_str();
  cmd->add_option("--max-steps", o->max_steps, "stop after this many steps in all (checks of scaled-down runs)")
      ->group("");
  add_common_options(*cmd, *common);
  cmd->callback([o, common] {
    if (o->dataset == "imagenet100" || o->dataset == "imagenet")
      throw UsageError("pretrain " + o->dataset + " is not available in this build yet (cifar10 and cifar100 are)");
    o->device = common->device;
    o->seed = common->seed;
    o->out = common->out;
    const train::PretrainOutcome outcome = train::run_pretrain(*o);
    if (outcome.status == train::PretrainStatus::diverged) throw Error(outcome.message);
    if (outcome.status == train::PretrainStatus::interrupted) {
      std::fprintf(stderr, "intl: %s\n", outcome.message.c_str());
      throw ExitCode{130};
    }
  });
}

}  // namespace intl::cli
