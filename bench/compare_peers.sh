#!/usr/bin/env bash
# Interleaved, same-sitting comparison of intl with the PyTorch peers in ../shared/peers (or $PEERS): each
# pair runs ROUNDS times alternately and the medians and their ratio are printed. These machines are shared
# and noisy: read the ratio, not the absolute times.
# Usage: bench/compare_peers.sh [toy2d|iternorm|train|decode|all] (from the repository root, after building)
# ROUNDS (3), BATCHES ("32 256": the training-step batches), FORWARD (1; 0 skips the forward-only comparison)
# and INTL (build/intl) may be set; `train` at batch 256 takes about 12 minutes a round on 2 cores.
set -euo pipefail
what=${1:-all}
rounds=${ROUNDS:-3}
peers=${PEERS:-$(cd "$(dirname "$0")/../.." && pwd)/shared/peers}
intl=${INTL:-build/intl}
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
now() { date +%s.%N; }

if [ "$what" = toy2d ] || [ "$what" = all ]; then
  : > "$tmp/peer"; : > "$tmp/ours"
  for i in $(seq "$rounds"); do
    OMP_NUM_THREADS=1 "$peers/run-peer" "$peers/toy2d_bench.py" --epochs 200 | awk '/^wall/ {print $2}' >> "$tmp/peer"
    t0=$(now); "$intl" run toy2d --T 5 --init well --out "$tmp/run$i" > /dev/null 2>&1; t1=$(now)
    echo "$t1 - $t0" | bc -l >> "$tmp/ours"
  done
  p=$(median < "$tmp/peer"); o=$(median < "$tmp/ours")
  printf 'toy2d 200 epochs (one run, IterNorm T=5, eigenvalue tracking): peer %.3f s, intl %.3f s (whole command), ratio %.1fx\n' "$p" "$o" "$(echo "$p / $o" | bc -l)"
fi

if [ "$what" = iternorm ] || [ "$what" = all ]; then
  : > "$tmp/peer"; : > "$tmp/ours"
  for i in $(seq "$rounds"); do
    "$peers/run-peer" "$peers/iternorm_bench.py" --m 256 --d 2048 | awk '$1 == 256 {print $3 / 1000}' >> "$tmp/peer"
    "$intl" bench iternorm --m 256 --d 2048 --T 4 | awk '/^median_ms/ {print $2}' >> "$tmp/ours"
  done
  p=$(median < "$tmp/peer"); o=$(median < "$tmp/ours")
  printf 'iternorm m=256 d=2048 T=4 fwd+bwd two views: peer %.1f ms, intl %.1f ms, ratio %.2fx\n' "$p" "$o" "$(echo "$p / $o" | bc -l)"
fi

if [ "$what" = train ] || [ "$what" = all ]; then
  for batch in ${BATCHES:-32 256}; do
    : > "$tmp/peer"; : > "$tmp/ours"
    for i in $(seq "$rounds"); do
      "$peers/run-peer" "$peers/resnet18_cifar_bench.py" --batches "$batch" --formats contiguous channels_last --skip-infer \
        | awk '/train/ && /img/ {for (k = 1; k <= NF; k++) if ($k ~ /img\/s/) print $(k-1)}' | sort -g | tail -n 1 >> "$tmp/peer"
      "$intl" bench train --arch resnet18-cifar --batch "$batch" --steps 5 | awk '/^images_per_s/ {print $2}' >> "$tmp/ours"
    done
    p=$(median < "$tmp/peer"); o=$(median < "$tmp/ours")
    printf 'train step batch %s: peer %.1f img/s, intl %.1f img/s, ratio %.2fx\n' "$batch" "$p" "$o" "$(echo "$o / $p" | bc -l)"
  done
  # The backbone's forward pass alone (eval mode, no gradients), batch 256; the peer's better layout counts.
  # FORWARD=0 skips it.
  if [ "${FORWARD:-1}" != 0 ]; then
    : > "$tmp/peer"; : > "$tmp/ours"
    for i in $(seq "$rounds"); do
      "$peers/run-peer" "$peers/resnet18_cifar_bench.py" --formats contiguous channels_last --skip-train --infer-batch 256 \
        | awk '/infer/ && /img/ {for (k = 1; k <= NF; k++) if ($k ~ /img\/s/) print $(k-1)}' | sort -g | tail -n 1 >> "$tmp/peer"
      "$intl" bench train --arch resnet18-cifar --batch 256 --steps 7 --forward-only | awk '/^images_per_s/ {print $2}' >> "$tmp/ours"
    done
    p=$(median < "$tmp/peer"); o=$(median < "$tmp/ours")
    printf 'backbone forward batch 256: peer %.1f img/s, intl %.1f img/s, ratio %.2fx\n' "$p" "$o" "$(echo "$o / $p" | bc -l)"
  fi
fi

# JPEG decoding + augmentation on one core, against PIL + torchvision doing the authors' ImageNet transforms
# (bench/decode_peer.py) on the same files.
if [ "$what" = decode ] || [ "$what" = all ]; then
  for mode in two-view multi-crop eval; do
    : > "$tmp/peer"; : > "$tmp/ours"
    for i in $(seq "$rounds"); do
      "$intl" bench decode --workers 1 --mode "$mode" --keep-files "$tmp/jpegs" | awk '/^images_per_s_per_core/ {print $2}' >> "$tmp/ours"
      "$peers/run-peer" "$(dirname "$0")/decode_peer.py" "$tmp/jpegs" --mode "$mode" | awk '/^images_per_s_per_core/ {print $2}' >> "$tmp/peer"
    done
    p=$(median < "$tmp/peer"); o=$(median < "$tmp/ours")
    printf 'decode + augment, %s, one core: peer %.1f img/s, intl %.1f img/s, ratio %.2fx\n' "$mode" "$p" "$o" "$(echo "$o / $p" | bc -l)"
  done
fi
