// The toy2d study: option checks, the grid, the data, the initial spectrum, the training loop with eigenvalue
// tracking, and the verdict. The network and the whitening are the fused ones of toy2d_net.h / toy2d_whiten.h.
#include "studies/toy2d.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <sstream>

#include "engine/error.h"
#include "engine/random.h"
#include "models/layers.h"

namespace intl::toy2d {

namespace {

const char* const kMethods[] = {"none", "iternorm", "intl", "st", "zca", "cholesky"};

Method parse_method(const std::string& name) {
  for (int i = 0; i < 6; ++i)
    if (name == kMethods[i]) return Method(i);
  throw UsageError("--method: unknown method '" + name + "'; allowed: none, iternorm, intl, st, zca, cholesky");
}

std::string number_text(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

template <class T>
void check_each(const std::vector<T>& values, const char* option, const char* allowed, bool (*ok)(T)) {
  if (values.empty()) throw UsageError(std::string(option) + ": needs at least one value; allowed: " + allowed);
  for (const T& v : values)
    if (!ok(v))
      throw UsageError(std::string(option) + ": " + number_text(double(v)) + " is out of range; allowed: " + allowed);
}

template <class T>
std::vector<T> unique_in_order(const std::vector<T>& values) {
  std::vector<T> out;
  for (const T& v : values)
    if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
  return out;
}

}  // namespace

void validate(const StudyOptions& o) {
  if (o.method.empty()) throw UsageError("--method: needs at least one value; allowed: none, iternorm, intl, st, zca, cholesky");
  for (const std::string& m : o.method) parse_method(m);
  check_each<int>(o.T, "--T", "integers 0..64", [](int t) { return t >= 0 && t <= kMaxT; });
  check_each<double>(o.p, "--p", "numbers in [0, 1] (0.5 whitens)", [](double p) { return p >= 0.0 && p <= 1.0; });
  check_each<double>(o.beta, "--beta", "finite numbers >= 0", [](double b) { return std::isfinite(b) && b >= 0.0; });
  if (o.init_cond.empty()) {
    if (o.init.empty()) throw UsageError("--init: needs at least one value; allowed: well, ill");
    for (const std::string& i : o.init)
      if (i != "well" && i != "ill") throw UsageError("--init: unknown initial spectrum '" + i + "'; allowed: well, ill");
  } else {
    // Above about 1e12 the smaller eigenvalue of a double-precision 2 x 2 covariance is rounding noise.
    check_each<double>(o.init_cond, "--init-cond", "condition numbers in [1, 1e12]",
                       [](double c) { return std::isfinite(c) && c >= 1.0 && c <= 1e12; });
  }
  check_each<int>(o.epochs, "--epochs", "integers 1..1000000", [](int e) { return e >= 1 && e <= 1000000; });
  check_each<int>(o.batch, "--batch", "integers 4..512", [](int b) { return b >= 4 && b <= kPoints; });
  check_each<double>(o.lr, "--lr", "finite numbers > 0", [](double l) { return std::isfinite(l) && l > 0.0; });
  check_each<double>(o.noise, "--noise", "finite numbers >= 0", [](double n) { return std::isfinite(n) && n >= 0.0; });
  check_each<int>(o.blobs, "--blobs", "integers 1..512", [](int b) { return b >= 1 && b <= kPoints; });
}

std::vector<RunSpec> expand_grid(const StudyOptions& o) {
  validate(o);
  struct Init {
    std::string name;
    double cond;
  };
  std::vector<Init> inits;
  if (o.init_cond.empty())
    for (const std::string& i : unique_in_order(o.init)) inits.push_back({i, i == "well" ? kWellCond : kIllCond});
  else
    for (double c : unique_in_order(o.init_cond)) inits.push_back({"", c});

  const std::vector<int> epochs = unique_in_order(o.epochs), batch = unique_in_order(o.batch);
  const std::vector<int> blobs = unique_in_order(o.blobs), T = unique_in_order(o.T);
  const std::vector<double> lr = unique_in_order(o.lr), noise = unique_in_order(o.noise);
  const std::vector<double> p = unique_in_order(o.p), beta = unique_in_order(o.beta);
  std::vector<RunSpec> runs;
  for (int e : epochs)
    for (int b : batch)
      for (double l : lr)
        for (double n : noise)
          for (int k : blobs)
            for (const Init& init : inits)
              for (const std::string& name : unique_in_order(o.method)) {
                RunSpec base;
                base.whiten.method = parse_method(name);
                base.init = init.name, base.init_cond = init.cond;
                base.epochs = e, base.batch = b, base.lr = l, base.noise = n, base.blobs = k, base.seed = o.seed;
                // The method's own parameters: T for iternorm and intl, p for st, beta for intl.
                std::vector<RunSpec> variants{base};
                const Method m = base.whiten.method;
                if (m == Method::iternorm || m == Method::intl) {
                  variants.clear();
                  for (int t : T)
                    for (double bt : m == Method::intl ? beta : std::vector<double>{0.0}) {
                      RunSpec r = base;
                      r.whiten.T = t, r.beta = bt;
                      variants.push_back(r);
                    }
                } else if (m == Method::st) {
                  variants.clear();
                  for (double pp : p) {
                    RunSpec r = base;
                    r.whiten.p = pp;
                    variants.push_back(r);
                  }
                }
                for (RunSpec& r : variants) {
                  std::string label = method_name(m);
                  if (m == Method::iternorm || m == Method::intl) label += " T=" + std::to_string(r.whiten.T);
                  if (m == Method::intl) label += " beta=" + number_text(r.beta);
                  if (m == Method::st) label += " p=" + number_text(r.whiten.p);
                  label += ", init " + (r.init.empty() ? "C=" + number_text(r.init_cond)
                                                       : r.init + " (C=" + number_text(r.init_cond) + ")");
                  if (epochs.size() > 1) label += ", epochs=" + std::to_string(e);
                  if (batch.size() > 1) label += ", batch=" + std::to_string(b);
                  if (lr.size() > 1) label += ", lr=" + number_text(l);
                  if (noise.size() > 1) label += ", noise=" + number_text(n);
                  if (blobs.size() > 1) label += ", blobs=" + std::to_string(k);
                  r.name = label;
                  runs.push_back(r);
                }
              }
  return runs;
}

namespace {

// Two standard normals from one Philox block (Box-Muller, both branches).
void normal_pair(RandomStream& rng, double& a, double& b) {
  const Philox4 blk = rng.next_block();
  const double u1 = u32_to_unit_double(blk.v[0], blk.v[1]), u2 = u32_to_unit_double(blk.v[2], blk.v[3]);
  const double r = std::sqrt(-2.0 * std::log(u1)), t = 6.283185307179586 * u2;
  a = r * std::cos(t), b = r * std::sin(t);
}

double median_of_tail(const std::vector<double>& v, size_t count) {
  if (v.empty()) return std::nan("");
  count = std::min(count, v.size());
  std::vector<double> tail(v.end() - long(count), v.end());
  std::nth_element(tail.begin(), tail.begin() + long(count / 2), tail.end());
  return tail[count / 2];
}

// Stream ids under the study's seed: the data set, the epoch order and the noise of the views.
constexpr uint64_t kStreamBlobs = kStreamData * 1000003 + 0;
constexpr uint64_t kStreamOrder = kStreamData * 1000003 + 1;

}  // namespace

std::vector<double> make_blobs(int blobs, uint64_t seed) {
  RandomStream rng{seed, kStreamBlobs};
  std::vector<double> centres(size_t(2 * blobs));
  for (double& c : centres) c = kBlobSpread * (2.0 * rng.next_uniform() - 1.0);
  std::vector<double> x(2 * kPoints);
  for (int i = 0; i < kPoints; ++i) {
    double a, b;
    normal_pair(rng, a, b);
    const int k = i % blobs;
    x[2 * i] = centres[2 * k] + a;
    x[2 * i + 1] = centres[2 * k + 1] + b;
  }
  return x;
}

std::vector<double> full_data_output(const Params& params, const std::vector<double>& points) {
  Activations act;
  act.resize(kPoints);
  act.x = points;
  net_forward(params, act);
  return act.z;
}

Params initial_params(const RunSpec& spec, const std::vector<double>& points, double* natural_cond) {
  MLP mlp({kIn, kHidden, kHidden, kOut}, /*hidden_bias=*/true, spec.seed, DType::f64);
  Params p = params_from_mlp(mlp);
  const Eig2 e = eig2_symmetric(covariance2(full_data_output(p, points).data(), kPoints));
  if (natural_cond) *natural_cond = e.max / e.min;
  // Scale the embedding by M = s_min u_min u_min^T + s_max u_max u_max^T: cov(Z M) has eigenvalues
  // s^2 lambda on the same axes. Choose them as tr C / (C + 1) and tr / (C + 1).
  const double tr = e.min + e.max, C = spec.init_cond;
  const double s_max = std::sqrt(tr * C / (C + 1) / e.max), s_min = std::sqrt(tr / (C + 1) / e.min);
  const double c = e.cos_t, s = e.sin_t;
  const Mat2 m = s_min * Mat2{s * s, -s * c, -s * c, c * c} + s_max * Mat2{c * c, s * c, s * c, s * s};
  double w3[kOut * kHidden], b3[kOut];
  for (int k = 0; k < kHidden; ++k) {
    w3[k] = m.a * p.w3[k] + m.b * p.w3[kHidden + k];
    w3[kHidden + k] = m.c * p.w3[k] + m.d * p.w3[kHidden + k];
  }
  b3[0] = m.a * p.b3[0] + m.b * p.b3[1];
  b3[1] = m.c * p.b3[0] + m.d * p.b3[1];
  std::copy(w3, w3 + kOut * kHidden, p.w3);
  std::copy(b3, b3 + kOut, p.b3);
  return p;
}

void Workspace::resize(int m) {
  for (int v = 0; v < 2; ++v) {
    view[v].resize(m);
    zc[v].assign(size_t(2 * m), 0.0);
    zhat[v].assign(size_t(2 * m), 0.0);
    dzhat[v].assign(size_t(2 * m), 0.0);
  }
  dz.assign(size_t(2 * m), 0.0);
  scratch.resize(m);
}

double loss_and_gradients(const RunSpec& spec, const Params& params, Workspace& ws, Params& grads) {
  const int m = ws.view[0].m;
  for (int v = 0; v < 2; ++v) {
    net_forward(params, ws.view[v]);
    whiten_forward(spec.whiten, ws.view[v].z.data(), m, ws.zc[v].data(), ws.zhat[v].data(), ws.cache[v]);
  }
  // MSE over the 2m elements: d/dzhat1 = (zhat1 - zhat2) / m, and the opposite for zhat2.
  const double* a = ws.zhat[0].data();
  const double* b = ws.zhat[1].data();
  double loss = 0;
  for (int i = 0; i < 2 * m; ++i) {
    const double d = a[i] - b[i];
    loss += d * d;
    ws.dzhat[0][i] = d / m;
    ws.dzhat[1][i] = -d / m;
  }
  loss /= 2 * m;
  if (spec.whiten.method == Method::intl) {
    // Trace loss, BW: v_j = sum_i zhat_ij^2 / (m - 1); sum_j (1 - v_j)^2; d/dzhat_ij = 4 (v_j - 1) zhat_ij / (m - 1).
    for (int v = 0; v < 2; ++v) {
      const double* z = ws.zhat[v].data();
      double var[2] = {0, 0};
      for (int i = 0; i < m; ++i) var[0] += z[2 * i] * z[2 * i], var[1] += z[2 * i + 1] * z[2 * i + 1];
      var[0] /= m - 1, var[1] /= m - 1;
      loss += spec.beta * ((1 - var[0]) * (1 - var[0]) + (1 - var[1]) * (1 - var[1]));
      const double k0 = spec.beta * 4 * (var[0] - 1) / (m - 1), k1 = spec.beta * 4 * (var[1] - 1) / (m - 1);
      for (int i = 0; i < m; ++i) ws.dzhat[v][2 * i] += k0 * z[2 * i], ws.dzhat[v][2 * i + 1] += k1 * z[2 * i + 1];
    }
  }
  std::fill(slab(grads), slab(grads) + kParamCount, 0.0);
  for (int v = 0; v < 2; ++v) {
    whiten_backward(spec.whiten, ws.cache[v], ws.zc[v].data(), ws.dzhat[v].data(), m, ws.dz.data());
    net_backward(params, ws.view[v], ws.dz.data(), grads, ws.scratch);
  }
  return loss;
}

std::string collapse_rule() {
  return "collapsed when the median over the last epoch of lambda_min(cov(Zhat)) is below " + number_text(kCollapseBelow);
}

std::string RunOutput::verdict() const {
  if (crashed) return "crashed";
  return collapsed ? "collapsed" : "not collapsed";
}

RunOutput run_toy2d(const RunSpec& spec, const std::function<void(int, double)>& on_epoch) {
  const auto t0 = std::chrono::steady_clock::now();
  RunOutput out;
  out.spec = spec;
  out.points = make_blobs(spec.blobs, spec.seed);
  Params params = initial_params(spec, out.points, &out.natural_cond);
  out.initial_output = full_data_output(params, out.points);
  {
    const Eig2 e = eig2_symmetric(covariance2(out.initial_output.data(), kPoints));
    out.initial_cond = e.max / e.min;
  }

  const int m = spec.batch, per_epoch = kPoints / m;
  const size_t iterations = size_t(spec.epochs) * size_t(per_epoch);
  for (auto* v : {&out.z_eig_min, &out.z_eig_max, &out.zhat_eig_min, &out.zhat_eig_max, &out.loss}) v->reserve(iterations);
  Workspace ws;
  ws.resize(m);
  Params grads{};
  RandomStream order{spec.seed, kStreamOrder}, noise{spec.seed, kStreamAugment};
  std::vector<int> perm(kPoints);
  for (int i = 0; i < kPoints; ++i) perm[size_t(i)] = i;

  int64_t iteration = 0;
  for (int epoch = 0; epoch < spec.epochs && !out.crashed; ++epoch) {
    for (int i = kPoints - 1; i > 0; --i) std::swap(perm[size_t(i)], perm[order.next_below(uint64_t(i) + 1)]);
    for (int step = 0; step < per_epoch; ++step, ++iteration) {
      for (int v = 0; v < 2; ++v) {
        double* x = ws.view[v].x.data();
        for (int r = 0; r < m; ++r) {
          const double* src = &out.points[2 * size_t(perm[size_t(step * m + r)])];
          double a, b;
          normal_pair(noise, a, b);
          x[2 * r] = src[0] + spec.noise * a;
          x[2 * r + 1] = src[1] + spec.noise * b;
        }
      }
      double loss;
      try {
        loss = loss_and_gradients(spec, params, ws, grads);
      } catch (const Error& e) {
        out.crashed = true, out.crash_iteration = iteration, out.crash_message = e.what();
        break;
      }
      double gnorm = 0;
      for (int k = 0; k < kParamCount; ++k) gnorm += slab(grads)[k] * slab(grads)[k];
      if (!std::isfinite(loss) || !std::isfinite(gnorm)) {
        out.crashed = true, out.crash_iteration = iteration;
        out.crash_message = std::isfinite(loss) ? "non-finite gradient" : "non-finite loss";
        break;
      }
      // Tracking (view 1, before the update, as the loss).
      const Eig2 ez = eig2_symmetric(covariance2(ws.view[0].z.data(), m));
      const Eig2 ew = eig2_symmetric(covariance2(ws.zhat[0].data(), m));
      out.z_eig_min.push_back(ez.min), out.z_eig_max.push_back(ez.max);
      out.zhat_eig_min.push_back(ew.min), out.zhat_eig_max.push_back(ew.max);
      out.loss.push_back(loss);
      // Plain SGD.
      for (int k = 0; k < kParamCount; ++k) slab(params)[k] -= spec.lr * slab(grads)[k];
    }
    if (on_epoch && !out.loss.empty()) on_epoch(epoch, out.loss.back());
  }

  const size_t tail = size_t(per_epoch);
  out.final_z_eig_min = median_of_tail(out.z_eig_min, tail);
  out.final_z_eig_max = median_of_tail(out.z_eig_max, tail);
  out.final_zhat_eig_min = median_of_tail(out.zhat_eig_min, tail);
  out.final_zhat_eig_max = median_of_tail(out.zhat_eig_max, tail);
  out.final_loss = median_of_tail(out.loss, tail);
  out.collapsed = is_collapsed(out.final_zhat_eig_min, out.crashed);
  out.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace intl::toy2d
