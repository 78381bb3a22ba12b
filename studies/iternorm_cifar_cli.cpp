// `intl run iternorm-cifar`: the options of studies/iternorm_cifar.h (lists are comma separated, every option
// may come from --config; experiments/iternorm-cifar.json is the paper's setting, iternorm-cifar-cpu.json the
// reduced one). Exit 130 when stopped by Ctrl-C; --resume continues.
#include <memory>

#include "cli/command.h"
#include "studies/iternorm_cifar.h"
#include "studies/sweep_cli.h"

namespace intl::cli {

void add_run_iternorm_cifar(CLI::App& run) {
  auto o = std::make_shared<studies::IternormCifarOptions>();
  auto* cmd = run.add_subcommand("iternorm-cifar", "IterNorm T with and without the trace loss on CIFAR-10: spectra "
                                                   "of cov(Z) and cov(Zhat), kNN and linear accuracy (supplement D.2)");
  cmd->footer("Flatness of a spectrum: lambda_r / lambda_1 of the r = min(batch, dim - 1) non-zero eigenvalues of the "
              "channel-whitening covariance. Reduced CPU setting: --config experiments/iternorm-cifar-cpu.json");
  cmd->add_option("--T", o->T, "IterNorm iterations, one run each with every --trace-loss value")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--trace-loss", o->trace_loss, "on and/or off")->delimiter(',')->capture_default_str();
  cmd->add_option("--beta", o->beta, "trace-loss weight per --T value (default: 5, 0.5, 0.05 for T = 1, 3, 5)")
      ->delimiter(',');
  cli::add_loss_form_option(*cmd, o->loss_form);
  cmd->add_option("--epochs", o->epochs, "training epochs")->capture_default_str();
  cmd->add_option("--batch", o->batch, "batch size")->capture_default_str();
  cmd->add_option("--lr", o->lr, "Adam learning rate")->capture_default_str();
  cmd->add_option("--weight-decay", o->weight_decay, "Adam weight decay")->capture_default_str();
  cmd->add_option("--warmup", o->warmup, "iterations of linear learning-rate warm-up")->capture_default_str();
  cmd->add_option("--drops", o->drops, "learning-rate drops at this many epochs before the end")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--drop-factor", o->drop_factor, "factor of each drop")->capture_default_str();
  cmd->add_option("--arch", o->arch, "resnet18 | resnet50")->capture_default_str();
  cmd->add_option("--width", o->width, "ResNet base width (64: the standard network)")->capture_default_str();
  cmd->add_option("--hidden", o->hidden, "projector hidden width")->capture_default_str();
  cmd->add_option("--dim", o->dim, "embedding size (projector output)")->capture_default_str();
  cmd->add_option("--image-size", o->image_size, "side of the training crops and evaluation images")
      ->capture_default_str();
  cmd->add_option("--dataset", o->dataset, "cifar10 | synthetic")->capture_default_str();
  cmd->add_option("--data-dir", o->data_dir, "folder of the CIFAR-10 binary files");
  cmd->add_option("--train-images", o->train_images, "use N training images (0: all; synthetic: 5000)")
      ->capture_default_str();
  cmd->add_option("--test-images", o->test_images, "use N test images (0: all; synthetic: 1000)")
      ->capture_default_str();
  cmd->add_option("--knn-every", o->knn_every, "5-NN accuracy every N epochs (0: only at the end)")
      ->capture_default_str();
  cmd->add_option("--linear-epochs", o->linear_epochs, "epochs of the final linear classifier (0: none)")
      ->capture_default_str();
  add_sweep_options(*cmd, o, [](const auto& options) { studies::run_iternorm_cifar(options); });
}

}  // namespace intl::cli
