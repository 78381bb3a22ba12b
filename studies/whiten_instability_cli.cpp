// `intl run whiten-instability`: the options of studies/whiten_instability.h (lists are comma separated, every
// option may come from --config; experiments/whiten-instability.json is the paper's setting,
// experiments/whiten-instability-cpu.json the reduced one). Exit 130 when stopped by Ctrl-C.
#include <memory>

#include "cli/command.h"
#include "studies/sweep_cli.h"
#include "studies/whiten_instability.h"

namespace intl::cli {

void add_run_whiten_instability(CLI::App& run) {
  auto o = std::make_shared<studies::WhitenInstabilityOptions>();
  auto* cmd = run.add_subcommand("whiten-instability", "hard whitening by eigendecomposition: inverse condition "
                                                       "number and crashes against d (supplement D.3, Figure IV)");
  cmd->footer("A crash (non-finite loss or gradient, or the eigensolver failing) is a result: its iteration is "
              "recorded and the next run starts. Reduced CPU setting: --config experiments/whiten-instability-cpu.json");
  cmd->add_option("--d", o->d, "embedding sizes, one run each (e.g. 64,128,256,512,1024,2048)")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--seeds", o->seeds, "runs per d, with seeds --seed, --seed + 1, ...")->capture_default_str();
  cmd->add_option("--batch", o->batch, "batch size m")->capture_default_str();
  cmd->add_option("--iters", o->iters, "training iterations per run")->capture_default_str();
  cmd->add_option("--p", o->p, "power of the spectral transformation lambda^-p (0.5: hard whitening)")
      ->capture_default_str();
  cmd->add_option("--eig-dtype", o->eig_dtype, "precision of the whitening and its eigensolver: float32 | float64")
      ->capture_default_str();
  cmd->add_option("--arch", o->arch, "resnet18 | resnet50")->capture_default_str();
  cmd->add_option("--width", o->width, "ResNet base width (64: the standard network)")->capture_default_str();
  cmd->add_option("--hidden", o->hidden, "projector hidden width (features -> hidden -> d)")->capture_default_str();
  cmd->add_option("--image-size", o->image_size, "side of the training crops (32: CIFAR; the paper used 224 on ImageNet)")
      ->capture_default_str();
  cmd->add_option("--dataset", o->dataset, "cifar10 | imagenet | synthetic")->capture_default_str();
  cmd->add_option("--data-dir", o->data_dir, "folder of the CIFAR-10 binary files");
  cmd->add_option("--train-images", o->train_images, "use N training images (0: all; synthetic: 5000)")
      ->capture_default_str();
  cmd->add_option("--lr", o->lr, "Adam learning rate")->capture_default_str();
  cmd->add_option("--weight-decay", o->weight_decay, "Adam weight decay")->capture_default_str();
  cmd->add_option("--warmup", o->warmup, "iterations of linear learning-rate warm-up")->capture_default_str();
  add_sweep_options(*cmd, o, [](const auto& options) { studies::run_whiten_instability(options); });
}

}  // namespace intl::cli
