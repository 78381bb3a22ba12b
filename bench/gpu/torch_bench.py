#!/usr/bin/env python3
"""PyTorch's figures for the work `intl bench` times, on the same machine (bench/gpu/run.sh calls it when
PyTorch is importable there).

  cifar     CIFAR ResNet-18 (3x3 stem at stride 1, no max pool) + projector 512-2048-2048-2048 + INTL loss
            + SGD step; two views of --batch random 32x32 images; images/s counts both views
  resnet50  ImageNet ResNet-50 + projector 2048-8192-8192-8192, the same step at 224x224
  iternorm  the INTL loss alone (CW IterNorm T=4 + trace loss + norm_mse), m x d = 256 x 2048, fwd+bwd

--precision bf16 runs the networks under torch.autocast (bf16 GEMMs and convolutions, fp32 master weights);
the loss always runs in fp32, as intl's does. fp32 is true float32, as intl's: TF32 is turned off for cuDNN
and cuBLAS (PyTorch allows it in cuDNN convolutions by default). Each case prints one line starting with "torch".

Usage: python3 bench/gpu/torch_bench.py [--device cuda] [--cases cifar resnet50 iternorm]
       [--precision fp32 bf16] [--steps 10]
"""
import argparse
import contextlib
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision


def iter_norm(x, iters):
    m, d = x.shape
    x = x - x.mean(dim=1, keepdim=True)
    sigma = x @ x.T / (d - 1)
    trace = sigma.diagonal().sum()
    sigma_n = sigma / trace
    p = torch.eye(m, dtype=x.dtype, device=x.device)
    for _ in range(iters):
        p = 0.5 * (3 * p - torch.linalg.matrix_power(p, 3) @ sigma_n)
    return p / trace.sqrt() @ x


def intl_loss(z1, z2, iters=4):
    m, d = z1.shape
    beta = (math.log2(m) - 3) * 0.01
    t1, t2 = iter_norm(z1.float(), iters), iter_norm(z2.float(), iters)
    trace = sum(((t * t).sum(dim=1) / (d - 1) - 1).pow(2).sum() for t in (t1, t2))
    cos = (F.normalize(t1) * F.normalize(t2)).sum(dim=1).mean()
    return 2 - 2 * cos + beta * trace


def projector(d_in, widths):
    layers, d = [], d_in
    for i, w in enumerate(widths):
        layers.append(nn.Linear(d, w))
        if i + 1 < len(widths):
            layers += [nn.BatchNorm1d(w), nn.ReLU(inplace=True)]
        d = w
    return nn.Sequential(*layers)


def network(case):
    if case == "cifar":
        backbone = torchvision.models.resnet18()
        backbone.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        backbone.maxpool = nn.Identity()
        widths, side = [2048, 2048, 2048], 32
    else:
        backbone = torchvision.models.resnet50()
        widths, side = [8192, 8192, 8192], 224
    d_in = backbone.fc.in_features
    backbone.fc = nn.Identity()
    return nn.Sequential(backbone, projector(d_in, widths)), side


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_steps(step, device, steps, warmup=3):
    for _ in range(warmup):
        step()
    sync(device)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def train_case(case, precision, batch, steps, device):
    torch.manual_seed(0)
    model, side = network(case)
    model = model.to(device).to(memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    x1 = torch.randn(batch, 3, side, side, device=device).contiguous(memory_format=torch.channels_last)
    x2 = torch.randn(batch, 3, side, side, device=device).contiguous(memory_format=torch.channels_last)
    autocast = (torch.autocast(device_type=device.type, dtype=torch.bfloat16) if precision == "bf16"
                else contextlib.nullcontext())

    def step():
        opt.zero_grad(set_to_none=True)
        with autocast:
            z1, z2 = model(x1), model(x2)
        loss = intl_loss(z1, z2)
        loss.backward()
        opt.step()

    med = time_steps(step, device, steps)
    rate = 2 * batch / med
    extra = f", cifar_epoch_s {100000 / rate:.2f}" if case == "cifar" else ""
    print(f"torch {case} {precision} batch {batch}x2: {med * 1e3:.1f} ms/step, images_per_s {rate:.1f}{extra}",
          flush=True)


def iternorm_case(steps, device):
    torch.manual_seed(0)
    z1 = torch.randn(256, 2048, device=device, requires_grad=True)
    z2 = (z1.detach() + 0.1 * torch.randn(256, 2048, device=device)).requires_grad_(True)

    def step():
        z1.grad = z2.grad = None
        intl_loss(z1, z2).backward()

    med = time_steps(step, device, steps * 5)
    print(f"torch iternorm fp32 m=256 d=2048 T=4 fwd+bwd two views: median_ms {med * 1e3:.3f}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--cases", nargs="+", default=["cifar", "resnet50", "iternorm"])
    ap.add_argument("--precision", nargs="+", default=["fp32", "bf16"])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=0, help="0: 256 for cifar, 128 for resnet50")
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        print(f"torch {torch.__version__} on {torch.cuda.get_device_name()}", flush=True)
    for case in args.cases:
        if case == "iternorm":
            iternorm_case(args.steps, device)
            continue
        for precision in args.precision:
            batch = args.batch or (256 if case == "cifar" else 128)
            train_case(case, precision, batch, args.steps, device)


if __name__ == "__main__":
    main()
