// --precision bf16 covers the network's GEMMs and convolutions and nothing else: whitening, eigensolvers and
// losses stay float32, in forward and backward (engine/precision.h). The ops put the precision they ran in into
// the backend's arguments and count it, so this is checked here on the CPU, which computes both in float32.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "engine/bfloat16.h"
#include "engine/error.h"
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

// bfloat16 storage on the host: what a GPU's bfloat16 activations read back as (engine/bfloat16.h).
TEST_CASE("bfloat16 rounds float32 to nearest even and keeps NaN and infinities") {
  auto round_trip = [](float f) { return float(bfloat16(f)); };
  CHECK(round_trip(1.0f) == 1.0f);
  CHECK(round_trip(-2.5f) == -2.5f);
  // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1); 1 + 3 * 2^-8 lies halfway
  // between 1 + 2^-7 and 1 + 2^-6 and goes up to the even one.
  CHECK(round_trip(1.0f + 0x1p-8f) == 1.0f);
  CHECK(round_trip(1.0f + 3 * 0x1p-8f) == 1.0f + 0x1p-6f);
  CHECK(round_trip(1.0f + 0x1p-8f + 0x1p-20f) == 1.0f + 0x1p-7f);  // above the tie: up
  CHECK(std::isnan(round_trip(NAN)));
  CHECK(round_trip(INFINITY) == INFINITY);
  CHECK(round_trip(-INFINITY) == -INFINITY);
  CHECK(round_trip(3.4e38f) == INFINITY);  // past bfloat16's largest finite value (about 3.39e38)
  CHECK(bfloat16(0.1).bits == 0x3dcd);     // 0.1 = 0x3dcccccd as float32
}

TEST_CASE("bfloat16 tensors convert on the CPU, and its kernels refuse bfloat16 activations with a clear message") {
  const Tensor x = Tensor::from_vector({0.1, -3.0, 1e-3, 300.5}, {4});
  const Tensor b = x.to(DType::bf16);
  CHECK(b.dtype() == DType::bf16);
  CHECK(dtype_size(DType::bf16) == 2);
  const std::vector<double> back = b.to_vector();
  for (size_t i = 0; i < back.size(); ++i)
    CHECK(back[i] == doctest::Approx(x.to_vector()[i]).epsilon(1.0 / 256));  // 8 significant bits
  CHECK(back[3] == 300.0);  // 300.5 rounds to the nearest bfloat16, 300 (steps of 2 there)
  // The differentiable cast carries the gradient back to float32.
  Tensor leaf = x.clone().requires_grad_(true);
  sum(cast(cast(leaf, DType::bf16), DType::f32)).backward();
  CHECK(leaf.grad().dtype() == DType::f32);
  CHECK(leaf.grad().to_vector() == std::vector<double>{1, 1, 1, 1});
  // The CPU stores bfloat16 but runs no network on it.
  const Tensor img = Tensor::zeros({1, 4, 4, 2}).to(DType::bf16), w = Tensor::zeros({3, 2, 3, 3});
  CHECK_THROWS_WITH_AS(conv2d(img, w, Tensor(), 1, 1), doctest::Contains("bfloat16 activations run on CUDA only"),
                       Error);
  CHECK_THROWS_WITH_AS(max_pool2d(img, 2, 2, 0), doctest::Contains("bfloat16 activations run on CUDA only"), Error);
  // And the run's precision never asks for them off a GPU.
  RunPrecision bf16(MatmulPrecision::bf16);
  CHECK_FALSE(bf16_activations(DType::f32, Device::cpu));
  CHECK(bf16_activations(DType::f32, Device::cuda));
  CHECK_FALSE(bf16_activations(DType::f64, Device::cuda));
  set_bf16_activations(false);
  CHECK_FALSE(bf16_activations(DType::f32, Device::cuda));
  set_bf16_activations(true);
}
