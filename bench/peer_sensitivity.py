#!/usr/bin/env python3
"""How fast INTL training in PyTorch amplifies a tiny difference in the weights (docs/pretrain.md, resuming).

Two copies of a CIFAR ResNet-18 + projector (Linear-BN-ReLU x 2 + Linear), the second with every weight
multiplied by (1 + 1e-7 N(0, 1)), take the same SGD steps (momentum 0.9, weight decay 1e-4) on the same
batches (two noisy views of 64 fixed random images); each step prints both losses and the relative distance
between the weights. intl's counterpart is a run at two thread counts (`OMP_NUM_THREADS=1` and `2`), which
differ by rounding alone.

Usage (the peers' IterNorm + INTL loss, Debian's python3-torch):
  OMP_NUM_THREADS=1 ../shared/peers/run-peer bench/peer_sensitivity.py [--batch 32] [--size 16] [--dim 256]
      [--lr 0.05] [--steps 12]
"""
import argparse
import copy
import os
import sys

import torch
import torch.nn as nn
import torchvision

sys.path.insert(0, os.environ.get("PEERS", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "peers")))
from iternorm_bench import intl_loss  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=16)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--steps", type=int, default=12)
    args = ap.parse_args()
    torch.manual_seed(0)
    backbone = torchvision.models.resnet18()
    backbone.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    backbone.maxpool = nn.Identity()
    backbone.fc = nn.Identity()
    d = args.dim
    projector = nn.Sequential(nn.Linear(512, d), nn.BatchNorm1d(d), nn.ReLU(), nn.Linear(d, d), nn.BatchNorm1d(d),
                              nn.ReLU(), nn.Linear(d, d))
    a = nn.Sequential(backbone, projector).train()
    b = copy.deepcopy(a)
    with torch.no_grad():
        g = torch.Generator().manual_seed(1)
        for p in b.parameters():
            p.mul_(1 + 1e-7 * torch.randn(p.shape, generator=g))
    opts = [torch.optim.SGD(m.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4) for m in (a, b)]
    gen = torch.Generator().manual_seed(2)
    images = torch.rand(64, 3, args.size, args.size, generator=gen)
    for step in range(args.steps):
        idx = torch.randint(0, 64, (args.batch,), generator=gen)
        x1 = images[idx] + 0.3 * torch.randn(args.batch, 3, args.size, args.size, generator=gen)
        x2 = images[idx] + 0.3 * torch.randn(args.batch, 3, args.size, args.size, generator=gen)
        losses = []
        for model, opt in zip((a, b), opts):
            opt.zero_grad()
            loss = intl_loss(model(x1), model(x2), iters=4)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        with torch.no_grad():
            dist = sum(((p - q) ** 2).sum() for p, q in zip(a.parameters(), b.parameters())) ** 0.5
            norm = sum((p ** 2).sum() for p in a.parameters()) ** 0.5
        print(f"step {step + 1}: loss {losses[0]:.5f} {losses[1]:.5f} (relative difference "
              f"{abs(losses[0] - losses[1]) / abs(losses[0]):.1e}), weights {float(dist / norm):.1e} apart", flush=True)


if __name__ == "__main__":
    main()
