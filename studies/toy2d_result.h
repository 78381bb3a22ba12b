// The toy2d study's result file: the fully resolved options and the study's fixed choices in `config`, and per
// run its settings, the per-iteration curves Figure III reads (z_eig_min, z_eig_max, zhat_eig_min,
// zhat_eig_max, loss against "iteration"), the arrays Figure II reads (points, initial_output), metrics, the
// verdict and any crash.
#pragma once
#include <string>
#include <vector>

#include "results/result.h"
#include "studies/toy2d.h"

namespace intl::toy2d {

results::Result toy2d_result(const StudyOptions& options, const std::vector<RunOutput>& runs,
                             const results::Header& header, const std::string& device_requested,
                             const std::string& out_dir);

}  // namespace intl::toy2d
