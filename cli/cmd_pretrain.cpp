// `intl pretrain cifar10|cifar100|imagenet100|imagenet --data-dir DIR`: INTL pre-training with the paper's
// recipe (SPEC 3.4), every number an option (or a key of --config FILE.json; experiments/cifar10.json,
// imagenet100.json and imagenet.json are the paper's runs). For the image-folder datasets, options left unset
// take that dataset's recipe (Table C, E.2) rather than CIFAR's defaults shown by --help.
// Exit status: 0 done, 1 failure or divergence, 2 bad options, 130 stopped by Ctrl-C (resumable).
#include <cstdio>
#include <string>

#include "cli/command.h"
#include "engine/error.h"
#include "train/pretrain.h"

namespace intl::cli {

namespace {

// The paper's ImageNet-100 (Table C) and ImageNet (E.2) recipes: the value an option left unset by the command
// line and --config takes for these datasets, in place of the CIFAR default --help shows beside it. One table
// serves the run and the help text.
struct RecipeEntry {
  const char* option;
  const char* imagenet100;
  const char* imagenet;
};
constexpr RecipeEntry kImageFolderRecipe[] = {
    {"--arch", "resnet18", "resnet50"},
    {"--stem", "imagenet", "imagenet"},
    {"--projector", "4096,4096,8192", "8192,8192,8192"},  // ImageNet-100: Table C says 4096, [code] 8192
    {"--zero-init-residual", "false", "true"},  // [code] the torchvision-based src/model.py (not in the paper)
    {"--epochs", "400", "100"},
    {"--batch-size", "128", "256"},
    {"--lr", "0", "0"},  // the recipe's base rate (--lr's help), by epoch budget for ImageNet
    {"--weight-decay", "2.5e-5", "1e-5"},
    {"--decay-1d", "false", "false"},  // [code] main.py, both datasets
    {"--image-size", "224", "224"},
    {"--linear-epochs", "100", "100"},
    {"--eval-every", "20", "0"},
    {"--final-eval", "knn,linear", "linear"},
    {"--workers", "8", "8"},
    {"--precision", "bf16", "bf16"},  // [code] main.py: autocast; the CPU ignores it
};

void apply_image_folder_recipe(CLI::App& cmd, const std::string& dataset) {
  for (const RecipeEntry& e : kImageFolderRecipe) {
    CLI::Option* option = cmd.get_option(e.option);
    if (option->count() > 0) continue;
    option->add_result(dataset == "imagenet100" ? e.imagenet100 : e.imagenet);
    option->run_callback();
  }
}

std::string image_folder_recipe_help() {
  std::string text = "imagenet100 | imagenet: options left unset take the dataset's recipe (Table C | E.2), not the "
                     "defaults above:\n";
  for (const RecipeEntry& e : kImageFolderRecipe)
    text += "  " + std::string(e.option) + " " + e.imagenet100 + " | " + e.imagenet + "\n";
  return text;
}

}  // namespace

void add_pretrain_command(CLI::App& app) {
  auto o = std::make_shared<train::PretrainOptions>();
  auto common = std::make_shared<CommonOptions>();
  auto* cmd = app.add_subcommand("pretrain", "self-supervised pre-training with INTL (SPEC 3.4), then kNN and linear "
                                             "evaluation");
  cmd->footer(image_folder_recipe_help());
  cmd->add_option("dataset", o->dataset, "cifar10 | cifar100 | imagenet100 | imagenet")
      ->required()
      ->check(CLI::IsMember({"cifar10", "cifar100", "imagenet100", "imagenet"}));
  cmd->add_option("--data-dir", o->data_dir,
                  "CIFAR: folder holding the binary files; ImageNet: folder holding train/CLASS/* and val/CLASS/*")
      ->required();
  cmd->add_option("--classes", o->classes_file,
                  "image folders: keep only the classes named in FILE, one per line (ImageNet-100: "
                  "experiments/imagenet100_classes.txt over a full ImageNet folder; unset: every class folder)");
  cmd->add_option("--on-bad-image", o->on_bad_image,
                  "image folders: an image that does not decode is skipped (counted in the result) or fails the run")
      ->check(CLI::IsMember({"skip", "fail"}))
      ->capture_default_str();
  cmd->add_flag("--ema,!--no-ema", o->ema, "momentum target network (m0 --ema-momentum, cosine to 1; target on crop 0)");
  cmd->add_option("--ema-momentum", o->ema_momentum, "m0 of the momentum target network")->capture_default_str();
  cmd->add_flag("--multi-crop,!--no-multi-crop", o->multi_crop,
                "image folders: Table B's six crops (224, 224, 192, 160, 128, 96 at --image-size 224) and the "
                "multi-crop loss");
  cmd->add_option("--decay-1d", o->decay_1d, "weight decay on 1-D parameters too (biases, batch-norm)")
      ->capture_default_str();
  cmd->add_option("--zero-init-residual", o->model.zero_init_residual,
                  "the last BN of each residual branch starts at weight 0")
      ->capture_default_str();
  cmd->add_option("--linear-lr", o->linear_lr,
                  "image folders: linear-protocol rate per 256 images (0: 0.2, or 0.4 for multi-crop + EMA)")
      ->capture_default_str();
  cmd->add_option("--linear-batch-size", o->linear_batch_size, "image folders: batch of the linear protocol")
      ->capture_default_str();
  cmd->add_option("--arch", o->model.arch, "backbone: resnet18 | resnet34 | resnet50")->capture_default_str();
  cmd->add_option("--stem", o->model.stem, "cifar (conv 3x3, no max pool) | imagenet")->capture_default_str();
  cmd->add_option("--base-width", o->model.base_width, "channels of the stem and layer1 (64 is ResNet-18)")
      ->capture_default_str();
  cmd->add_option("--projector", o->model.projector, "projector layer widths, e.g. 2048,2048,2048")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--T", o->T, "IterNorm iterations")->capture_default_str();
  cli::add_loss_form_option(*cmd, o->loss_form);
  cmd->add_option("--beta", o->beta, "trace-loss weight (0: 0.01 (log2(batch-size) - 3), 0.05 at 256)")
      ->capture_default_str();
  cmd->add_option("--epochs", o->epochs, "training epochs")->capture_default_str();
  cmd->add_option("--batch-size", o->batch_size, "images per step (two views each)")->capture_default_str();
  cmd->add_option("--lr", o->lr,
                  "base learning rate per 256 images (the rate used is lr x batch-size / 256); 0: the recipe's "
                  "(CIFAR 0.3, ImageNet-100 0.5, ImageNet 0.5 / 0.4 / 0.3 for <= 100 / <= 400 / more epochs)")
      ->capture_default_str();
  cmd->add_option("--momentum", o->momentum, "SGD momentum")->capture_default_str();
  cmd->add_option("--weight-decay", o->weight_decay, "SGD weight decay (on 1-D parameters too with --decay-1d true)")->capture_default_str();
  cmd->add_option("--warmup-epochs", o->warmup_epochs, "linear warm-up, per step, over this many epochs")
      ->capture_default_str();
  cmd->add_option("--final-lr-ratio", o->final_lr_ratio, "cosine decay ends at this fraction of the base rate")
      ->capture_default_str();
  cmd->add_option("--image-size", o->image_size, "side of the training crops and evaluation images")
      ->capture_default_str();
  cmd->add_option("--train-images", o->train_images,
                  "use N training images (0: all): CIFAR's first N, an image folder's N round-robin over its classes")
      ->capture_default_str();
  cmd->add_option("--test-images", o->test_images, "use N test images (0: all), taken as --train-images")
      ->capture_default_str();
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
      ->check(positive())
      ->capture_default_str();
  cmd->add_option("--max-steps", o->max_steps, "stop after this many steps in all (checks of scaled-down runs)")
      ->group("");
  add_common_options(*cmd, *common);
  cmd->callback([o, common, cmd] {
    if (train::is_image_folder_dataset(o->dataset)) apply_image_folder_recipe(*cmd, o->dataset);
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
