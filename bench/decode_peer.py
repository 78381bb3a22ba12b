#!/usr/bin/env python3
"""The peer of `intl bench decode`: the same JPEGs decoded and augmented by PIL and torchvision, as the authors'
ImageNet loader does (src/transform.py of the paper's code: RandomResizedCrop bicubic, ColorJitter with p 0.8,
grayscale p 0.2, PIL GaussianBlur(radius=sigma), PIL solarize, flip, ToTensor, Normalize), on one thread.

    intl bench decode --keep-files DIR          # writes DIR/synthetic/*.JPEG
    ../shared/peers/run-peer bench/decode_peer.py DIR --mode two-view --images 256

Prints images_per_s_per_core (images per CPU-second of this process), as `intl bench decode` does.
"""
import argparse
import glob
import os
import random
import time

import torch
import torchvision.transforms as T
from PIL import Image, ImageFilter, ImageOps


class Blur:
    def __call__(self, img):
        return img.filter(ImageFilter.GaussianBlur(radius=random.uniform(0.1, 2.0)))


class Solarize:
    def __call__(self, img):
        return ImageOps.solarize(img)


def view(size, scale, blur_p, solarize_p):
    return T.Compose([
        T.RandomResizedCrop(size, scale=scale, interpolation=T.InterpolationMode.BICUBIC),
        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
        T.RandomGrayscale(p=0.2),
        T.RandomApply([Blur()], p=blur_p),
        T.RandomApply([Solarize()], p=solarize_p),
        T.RandomHorizontalFlip(),
        T.ToTensor(),
        T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    ])


def pipeline(mode):
    if mode == "two-view":  # SPEC 3.4 / Table A: blur p 1.0 and 0.1, solarize p 0.0 and 0.2
        return [view(224, (0.08, 1.0), 1.0, 0.0), view(224, (0.08, 1.0), 0.1, 0.2)]
    if mode == "multi-crop":  # Table B: 2 x 224, 192, 160, 128, 96; blur p 0.5, solarize p 0.1
        crops = [(224, 0.2, 1.0), (224, 0.2, 1.0), (192, 0.171, 0.857), (160, 0.143, 0.714), (128, 0.114, 0.571),
                 (96, 0.086, 0.429)]
        return [view(s, (lo, hi), 0.5, 0.1) for s, lo, hi in crops]
    return [T.Compose([T.Resize(256, interpolation=T.InterpolationMode.BILINEAR), T.CenterCrop(224), T.ToTensor(),
                       T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", help="the folder `intl bench decode --keep-files` wrote")
    ap.add_argument("--mode", choices=["two-view", "multi-crop", "eval"], default="two-view")
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    files = sorted(glob.glob(os.path.join(args.folder, "synthetic", "*.JPEG")))
    if not files:
        raise SystemExit(f"decode_peer: no JPEGs in {args.folder}/synthetic; run intl bench decode --keep-files first")
    views = pipeline(args.mode)

    def one(path):
        with open(path, "rb") as f:
            img = Image.open(f).convert("RGB")
        return [v(img) for v in views]

    one(files[0])  # warm-up
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i in range(args.images):
        one(files[i % len(files)])
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(f"mode: {args.mode}  images: {args.images}  files: {len(files)}")
    print(f"images_per_s_per_core: {args.images / cpu:.1f}")
    print(f"images_per_s: {args.images / wall:.1f}")


if __name__ == "__main__":
    main()
