// --precision bf16 covers the network's GEMMs and convolutions and nothing else: whitening, eigensolvers and
// losses stay float32, in forward and backward (engine/precision.h). The ops put the precision they ran in into
// the backend's arguments and count it, so this is checked here on the CPU, which computes both in float32.
#include <doctest/doctest.h>

#include "engine/ops.h"
#include "engine/precision.h"
#include "losses/intl_loss.h"
#include "losses/whitening.h"

using namespace intl;

namespace {

// Sets the run's precision for one test and restores fp32 after it.
struct RunPrecision {
  explicit RunPrecision(MatmulPrecision p) { set_matmul_precision(p); }
  ~RunPrecision() { set_matmul_precision(MatmulPrecision::fp32); }
};

// GEMM and convolution calls made by f, by precision.
template <class F> MatmulCounts counted(F&& f) {
  const MatmulCounts before = matmul_counts();
  f();
  const MatmulCounts after = matmul_counts();
  return {after.fp32 - before.fp32, after.bf16 - before.bf16};
}

}  // namespace

TEST_CASE("a precision scope overrides the run's precision on its thread and nests") {
  RunPrecision run(MatmulPrecision::bf16);
  CHECK(matmul_precision() == MatmulPrecision::bf16);
  {
    const LossPrecision fp32;
    CHECK(matmul_precision() == MatmulPrecision::fp32);
    {
      const MatmulPrecisionScope inner(MatmulPrecision::bf16);
      CHECK(matmul_precision() == MatmulPrecision::bf16);
    }
    CHECK(matmul_precision() == MatmulPrecision::fp32);
  }
  CHECK(matmul_precision() == MatmulPrecision::bf16);
  CHECK(matmul_in_bf16(DType::f32));
  CHECK_FALSE(matmul_in_bf16(DType::f64));  // float64 ignores the precision
}

TEST_CASE("a backward pass runs in the precision of its forward, not the one in effect when it is called") {
  Tensor a = Tensor::randn({4, 5}, 1, 0).requires_grad_(true);
  Tensor b = Tensor::randn({5, 3}, 2, 0).requires_grad_(true);
  Tensor loss;
  const MatmulCounts forward = counted([&] {
    const MatmulPrecisionScope bf16(MatmulPrecision::bf16);
    loss = sum(matmul(a, b));
  });
  CHECK(forward.bf16 == 1);
  CHECK(forward.fp32 == 0);
  const MatmulCounts backward = counted([&] { loss.backward(); });  // called under the run's fp32
  CHECK(backward.bf16 == 2);  // dA = G B^T, dB = A^T G
  CHECK(backward.fp32 == 0);
}

TEST_CASE("under bf16 the network's layers run in bfloat16 and every INTL loss form in float32") {
  RunPrecision run(MatmulPrecision::bf16);
  const int64_t m = 6, d = 12;
  Tensor x = Tensor::randn({m, 1, 1, 4}, 3, 0);
  Tensor conv_w = mul(Tensor::randn({d, 4, 1, 1}, 4, 0), 0.5).requires_grad_(true);
  Tensor lin_w = mul(Tensor::randn({d, d}, 5, 0), 0.4).requires_grad_(true);
  for (IntlLossForm form : {IntlLossForm::spectral, IntlLossForm::newton}) {
    CAPTURE(intl_loss_form_name(form));
    Tensor z1, z2;
    const MatmulCounts net = counted([&] {
      z1 = linear(reshape(conv2d(x, conv_w, Tensor(), 1, 0), {m, d}), lin_w, Tensor());
      z2 = linear(reshape(conv2d(mul(x, 0.5), conv_w, Tensor(), 1, 0), {m, d}), lin_w, Tensor());
    });
    CHECK(net.bf16 == 4);  // two convolutions, two linear layers
    CHECK(net.fp32 == 0);
    Tensor loss;
    const MatmulCounts forward = counted([&] { loss = intl_loss(z1, z2, 4, 0.05, form); });
    CHECK(forward.bf16 == 0);
    CHECK(forward.fp32 > 0);
    const MatmulCounts backward = counted([&] { loss.backward(); });
    // The network's backward: per view, the linear layer's input and weight gradients and the convolution's
    // filter gradient (its input needs none), all bfloat16; everything the loss differentiates, float32.
    CHECK(backward.bf16 == 6);
    CHECK(backward.fp32 > 0);
    conv_w.zero_grad();
    lin_w.zero_grad();
  }
}

TEST_CASE("whitening transforms keep float32 under bf16, forward and backward") {
  RunPrecision run(MatmulPrecision::bf16);
  for (WhitenAxis axis : {WhitenAxis::channel, WhitenAxis::batch}) {
    // Full-rank covariances: CW needs d - 1 >= m, BW m - 1 >= d.
    const Shape shape = axis == WhitenAxis::channel ? Shape{5, 10} : Shape{10, 5};
    Tensor z = Tensor::randn(shape, 7, 0).requires_grad_(true);
    const MatmulCounts c = counted([&] {
      Tensor loss = add(add(sum(square(iternorm(z, 3, axis))), sum(square(spectral_transform(z, 0.25, axis)))),
                        sum(square(cholesky_whiten(z, axis))));
      loss.backward();
    });
    CHECK(c.bf16 == 0);
    CHECK(c.fp32 > 0);
  }
}
