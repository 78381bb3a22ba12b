#!/usr/bin/env bash
# The GPU check for a lent H200 machine, as one script: build intl with CUDA for sm_90, run the test suite
# (the CPU/GPU parity table among it), then `intl bench iternorm` and `intl bench train` (CIFAR ResNet-18 and
# ImageNet ResNet-50, fp32 and bf16, each followed by a --profile table of where a GPU step's time goes), then
# the commands themselves briefly on the GPU, then PyTorch on the same work (bench/gpu/torch_bench.py) where it
# is installed. Logs land in $OUT (at most 8 files come back): summary.txt, build.log, tests.log,
# bench_iternorm.log, bench_train.log, commands.log and bench_torch.log. Budget: about 9 minutes of a 15-minute
# device allowance; every step has a timeout, and a failed step is recorded in summary.txt and the next one
# still runs.
#
# The device image ('cuda') has nvcc, CMake and ninja (pip) and PyTorch's cuDNN/cuBLAS wheels, but not the
# Debian packages this project builds against. So, once, on the development machine, from the repo root:
#     bash bench/gpu/run.sh fetch        # apt-get download of those .debs into .debs/ (git-ignored), ~21 MB
# and on the device (carry ".debs" and, if you want it, nothing else):
#     bash bench/gpu/run.sh              # run(command="bash bench/gpu/run.sh", carry=[".debs"], timeout_s=540)
#     INTL_GPU_CHECK=speed bash bench/gpu/run.sh   # build, tests, then only the training figures (~3 min)
# cuDNN is taken from the CUDA toolkit or /usr when present, else from site-packages/nvidia (pip's
# nvidia-cudnn-cu13) through -DINTL_CUDNN_ROOT; cuBLAS/cuSOLVER likewise from the toolkit, else from pip's
# nvidia-cublas / nvidia-cusolver through unversioned links in a scratch folder.
set -u
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
DEBS="$ROOT/.debs"
PACKAGES="nlohmann-json3-dev libcli11-dev doctest-dev libstb-dev libstb0 libopenblas-openmp-dev libopenblas-dev
  libopenblas0-openmp libgfortran5 libquadmath0 libdnnl-dev libdnnl2 ocl-icd-libopencl1"

if [ "${1:-}" = fetch ]; then
  mkdir -p "$DEBS" && cd "$DEBS" && apt-get download $PACKAGES || exit 1
  exclude="$(git -C "$ROOT" rev-parse --path-format=absolute --git-common-dir)/info/exclude"
  grep -qx '/.debs/' "$exclude" 2>/dev/null || echo '/.debs/' >>"$exclude"
  du -sh "$DEBS"
  exit 0
fi

OUT=${OUT:-$ROOT/gpu-out}
mkdir -p "$OUT"
SUMMARY="$OUT/summary.txt"
: >"$SUMMARY"
note() { echo "$*" | tee -a "$SUMMARY"; }
# step NAME LOG SECONDS COMMAND...: runs with a timeout, records ok / FAILED (exit code) in the summary.
step() {
  local name=$1 log=$2 secs=$3
  shift 3
  local t0=$SECONDS
  timeout "$secs" "$@" >>"$log" 2>&1
  local rc=$?
  note "$(printf '%-34s %s (%ds)' "$name" "$([ $rc = 0 ] && echo ok || echo "FAILED rc=$rc")" $((SECONDS - t0)))"
  return $rc
}

# ---- environment ----
note "== intl GPU check, $(date -u +%FT%TZ), git $(git rev-parse --short=12 HEAD 2>/dev/null || echo '?')"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >>"$SUMMARY" 2>&1
# The state of the machine around the timings, to tell a slow sitting from a slow build: the GPU's clocks,
# utilisation, temperature and power, the processes holding it (anything but ours is another tenant), and
# the host's load.
machine_state() {
  note "-- machine $1: $(cut -d' ' -f1-3 /proc/loadavg) host load (1, 5, 15 min), $(nproc) cores"
  nvidia-smi --query-gpu=clocks.sm,clocks.max.sm,clocks.mem,utilization.gpu,temperature.gpu,power.draw \
    --format=csv >>"$SUMMARY" 2>&1
  nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv >>"$SUMMARY" 2>&1
}
machine_state "at the start"
NVCC=$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
[ -n "$NVCC" ] || { note "no nvcc found: cannot build"; exit 1; }
CUDA_HOME=$(dirname "$(dirname "$(readlink -f "$NVCC")")")
note "nvcc: $NVCC ($("$NVCC" --version | grep -o 'release [0-9.]*'))"
SITE=$(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null)
find_site() { for s in $SITE; do find "$s/nvidia" -name "$1" 2>/dev/null | head -1; done | head -1; }
command -v ninja >/dev/null || PATH="$(python3 -c 'import ninja; print(ninja.BIN_DIR)' 2>/dev/null):$PATH"
command -v cmake >/dev/null || PATH="$(python3 -c 'import cmake; print(cmake.CMAKE_BIN_DIR)' 2>/dev/null):$PATH"
note "cmake: $(cmake --version 2>/dev/null | head -1), ninja: $(ninja --version 2>/dev/null)"

CMAKE_ARGS=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DINTL_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90
  -DCMAKE_CUDA_COMPILER="$NVCC" -DCUDAToolkit_ROOT="$CUDA_HOME" -DCMAKE_POLICY_VERSION_MINIMUM=3.5)
LIBPATH=""

# cuDNN: the toolkit's or the system's first, else pip's.
any_file() { for f; do [ -f "$f" ] && return 0; done; return 1; }
if any_file "$CUDA_HOME/include/cudnn.h" /usr/include/cudnn.h /usr/include/x86_64-linux-gnu/cudnn.h; then
  note "cuDNN: system"
else
  h=$(find_site cudnn.h)
  [ -n "$h" ] || { note "cuDNN: not found (no cudnn.h in the toolkit, /usr or site-packages/nvidia)"; exit 1; }
  CUDNN_ROOT=$(dirname "$(dirname "$h")")
  CMAKE_ARGS+=(-DINTL_CUDNN_ROOT="$CUDNN_ROOT")
  LIBPATH="$CUDNN_ROOT/lib:$LIBPATH"
  note "cuDNN: $CUDNN_ROOT (pip)"
fi

# cuBLAS / cuSOLVER / cudart: pip wheels ship only versioned names; link unversioned ones for find_library.
if ! ls "$CUDA_HOME"/lib*/libcublas.so* "$CUDA_HOME"/targets/x86_64-linux/lib/libcublas.so* >/dev/null 2>&1; then
  LINKS=/tmp/intl-cuda-libs
  mkdir -p "$LINKS"
  for lib in cublas cublasLt cusolver cudart cusparse nvJitLink; do
    f=$(find_site "lib$lib.so.*[0-9]")
    [ -n "$f" ] && ln -sf "$f" "$LINKS/lib$lib.so" && LIBPATH="$(dirname "$f"):$LIBPATH"
  done
  export CMAKE_LIBRARY_PATH="$LINKS:${CMAKE_LIBRARY_PATH:-}"
  note "cuBLAS/cuSOLVER: pip ($(ls "$LINKS" | tr '\n' ' '))"
fi

# The Debian build dependencies, unpacked from the carried .debs (never into /).
# INTL_USE_DEBS=1 takes them even where the system has its own (to test this path off the device).
if [ -n "${INTL_USE_DEBS:-}" ] || ! ls /usr/include/nlohmann/json.hpp /usr/include/doctest/doctest.h \
  /usr/include/stb/stb_image.h /usr/include/CLI/CLI.hpp /usr/include/dnnl.hpp >/dev/null 2>&1
then
  if ! ls "$DEBS"/*.deb >/dev/null 2>&1; then
    note "build dependencies missing and no .debs carried: run 'bash bench/gpu/run.sh fetch' here, carry .debs"
    exit 1
  fi
  DEP=/tmp/intl-deps
  for f in "$DEBS"/*.deb; do dpkg -x "$f" "$DEP"; done
  A=$DEP/usr/lib/x86_64-linux-gnu
  CMAKE_ARGS+=(-DCMAKE_PREFIX_PATH="$DEP/usr" -DSTB_INCLUDE="$DEP/usr/include/stb"
    -DOPENBLAS_INCLUDE="$DEP/usr/include/x86_64-linux-gnu/openblas-openmp"
    -DOPENBLAS_LIB="$A/openblas-openmp/libopenblas.so" -DDNNL_LIB="$A/libdnnl.so"
    -DDOCTEST_INCLUDE="$DEP/usr/include" -DCMAKE_CXX_FLAGS="-isystem $DEP/usr/include")
  LIBPATH="$A/openblas-openmp:$A:$LIBPATH"
  note "build dependencies: carried .debs unpacked into $DEP"
fi
export LD_LIBRARY_PATH="$LIBPATH${LD_LIBRARY_PATH:-}"

# ---- build and test ----
BUILD=$ROOT/build-gpu
JOBS=${INTL_JOBS:-16}  # the H200 machine has 16 cores
step "configure" "$OUT/build.log" 120 cmake -S "$ROOT" -B "$BUILD" "${CMAKE_ARGS[@]}" ||
  { tail -30 "$OUT/build.log"; exit 1; }
step "build (ninja -j$JOBS)" "$OUT/build.log" 360 ninja -C "$BUILD" -j"$JOBS" || { tail -40 "$OUT/build.log"; exit 1; }
step "ctest" "$OUT/tests.log" 180 ctest --test-dir "$BUILD" -j8 --output-on-failure
step "parity table (durations)" "$OUT/tests.log" 120 "$BUILD/intl_tests" --source-file='*test_cuda_parity*' \
  --duration=true
grep -q "SKIP: no usable GPU" "$OUT/tests.log" && note "WARNING: the CUDA tests SKIPPED: no usable GPU seen"

# INTL_GPU_CHECK=speed: after the tests, only the training benchmarks (ResNet-50 with a profile; CIFAR over 50
# steps, its figure being the noisier; bf16 also with float32 activations, --bf16-activations off, and with the
# convolution algorithms chosen by timing, --conv-algo measured | fastest) and PyTorch's figures for the same
# work: a short rerun after a change (about 5 minutes).
if [ "${INTL_GPU_CHECK:-}" = speed ]; then
  for p in bf16 fp32; do
    step "bench train resnet50 $p" "$OUT/bench_train.log" 120 "$BUILD/intl" bench train --device cuda \
      --precision $p --arch resnet50-imagenet --steps 10 --profile 2
    for form in newton spectral; do
      prof=(); [ $form = newton ] && prof=(--profile 3)
      step "bench train cifar $p $form" "$OUT/bench_train.log" 90 "$BUILD/intl" bench train --device cuda \
        --precision $p --arch resnet18-cifar --steps 50 --loss-form $form "${prof[@]}"
    done
  done
  # bf16 with the activations in float32 (each convolution's operands rounded into copies), for the ratio
  step "bench train resnet50 bf16 act-fp32" "$OUT/bench_train.log" 120 "$BUILD/intl" bench train --device cuda \
    --precision bf16 --bf16-activations off --arch resnet50-imagenet --steps 10
  step "bench train cifar bf16 act-fp32" "$OUT/bench_train.log" 90 "$BUILD/intl" bench train --device cuda \
    --precision bf16 --bf16-activations off --arch resnet18-cifar --steps 50 --loss-form newton
  # bf16 with the cuDNN algorithms chosen by timing (as PyTorch's cudnn.benchmark, which torch_bench.py sets):
  # the fastest deterministic one, then the fastest of all; the conv_search line says what determinism costs
  for algo in measured fastest; do
    step "bench train resnet50 bf16 $algo" "$OUT/bench_train.log" 150 "$BUILD/intl" bench train --device cuda \
      --precision bf16 --conv-algo $algo --arch resnet50-imagenet --steps 10
    step "bench train cifar bf16 $algo" "$OUT/bench_train.log" 90 "$BUILD/intl" bench train --device cuda \
      --precision bf16 --conv-algo $algo --arch resnet18-cifar --steps 50 --loss-form newton
  done
  # with the profile rows (ResNet-50, CIFAR in the Newton form: ms and GB/s) of the passes the engine's own kernels run, beside cuDNN's
  grep -E "^(intl bench train|steps:|host_issue_ms|conv_search|the [0-9]+ slowest| +[0-9.]+ ms  |images_per_s|cifar_epoch_s|profile:)|^  (conv2d_|batchnorm2d_|maxpool2d_|binary |gemm |sgd_step |\(outside)" \
    "$OUT/bench_train.log" >>"$SUMMARY"
  if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    step "torch (same work)" "$OUT/bench_torch.log" 150 python3 "$ROOT/bench/gpu/torch_bench.py" --device cuda \
      --cases cifar resnet50 --steps 20
    grep "^torch" "$OUT/bench_torch.log" >>"$SUMMARY"
  fi
  machine_state "at the end"
  note "== done in ${SECONDS}s"
  exit 0
fi

# ---- benchmarks, when the commands exist ----
has() { timeout 20 "$BUILD/intl" bench --help 2>/dev/null | grep -qE "^ +$1( |$)"; }
cd "$OUT"
if has iternorm; then
  # Both forms of the loss: the eigensolver one (the training path) and the literal Newton one, whose small
  # GEMMs may beat cuSOLVER's 256 x 256 syevd on a GPU; the figures decide which the GPU should train with.
  for form in spectral newton; do
    step "bench iternorm $form" "$OUT/bench_iternorm.log" 60 "$BUILD/intl" bench iternorm --device cuda \
      --loss-form $form --profile 5
  done
else
  note "bench iternorm: not available in this build"
fi
if has train; then
  # CIFAR ResNet-18 at batch 256 (the 5-second-epoch target, bf16) and ResNet-50 at 224 x 224, batch 128
  # (the 3,000 images/s target, bf16), in the GPU's default (Newton) form of the loss, then the CIFAR step
  # with the spectral form; all append to one log.
  for p in fp32 bf16; do
    step "bench train cifar $p" "$OUT/bench_train.log" 90 "$BUILD/intl" bench train --device cuda --precision $p \
      --arch resnet18-cifar --steps 10 --profile 3
    step "bench train resnet50 $p" "$OUT/bench_train.log" 120 "$BUILD/intl" bench train --device cuda \
      --precision $p --arch resnet50-imagenet --steps 5 --profile 2
  done
  step "bench train cifar bf16 spectral" "$OUT/bench_train.log" 90 "$BUILD/intl" bench train --device cuda \
    --precision bf16 --arch resnet18-cifar --steps 10 --loss-form spectral
  step "bench train resnet50 bf16 act-fp32" "$OUT/bench_train.log" 120 "$BUILD/intl" bench train --device cuda \
    --precision bf16 --bf16-activations off --arch resnet50-imagenet --steps 5
  step "bench train resnet50 bf16 measured" "$OUT/bench_train.log" 150 "$BUILD/intl" bench train --device cuda \
    --precision bf16 --conv-algo measured --arch resnet50-imagenet --steps 5
  grep -E "^(intl bench train|host_issue_ms|conv_search|images_per_s|cifar_epoch_s)" "$OUT/bench_train.log" \
    >>"$SUMMARY"
else
  note "bench train: not available in this build"
fi
grep -E "^(intl bench iternorm|median_ms)" "$OUT/bench_iternorm.log" 2>/dev/null >>"$SUMMARY"

# ---- the commands themselves on the GPU, briefly: toy2d (which says it keeps its fused CPU path), the reduced
# whiten-instability study (GPU eigensolvers), iternorm-cifar and pre-training on synthetic CIFAR-format files
# (written by the former), bf16, with allocator counters ----
I="$BUILD/intl"
W=/tmp/intl-commands
rm -rf "$W"
CMDS=$OUT/commands.log
step "toy2d --device cuda" "$CMDS" 60 "$I" run toy2d --T 5 --device cuda --out "$W/toy2d"
step "whiten-instability cuda (reduced)" "$CMDS" 90 "$I" run whiten-instability \
  --config "$ROOT/experiments/whiten-instability-cpu.json" --device cuda --out "$W/wi"
step "iternorm-cifar cuda bf16" "$CMDS" 90 "$I" run iternorm-cifar --dataset synthetic --train-images 5120 \
  --test-images 1000 --T 5 --trace-loss on --epochs 2 --warmup 10 --drops 1 --linear-epochs 20 --workers 8 \
  --device cuda --precision bf16 --out "$W/ic"
step "pretrain cifar10 cuda bf16" "$CMDS" 90 "$I" pretrain cifar10 --data-dir "$W/ic/synthetic-cifar10" --epochs 3 \
  --warmup-epochs 1 --batch-size 256 --eval-every 3 --linear-epochs 20 --workers 12 --device cuda \
  --precision bf16 --verbose --out "$W/pretrain"
grep -E "^d=[0-9]+ seed|done,|images/s|float32 GEMMs" "$CMDS" | tail -10 >>"$SUMMARY"
# The data loader alone on this machine's cores: a 5-second CIFAR epoch needs 10,000 images (two views each) a second.
if has loader; then
  step "bench loader (all cores)" "$CMDS" 60 "$I" bench loader --images 20000
  grep -E "^images_per_s" "$CMDS" | tail -2 >>"$SUMMARY"
fi

# ---- PyTorch's figures for the same work, where PyTorch sees the GPU ----
if python3 -c 'import torch, torchvision, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  step "torch (same work)" "$OUT/bench_torch.log" 180 python3 "$ROOT/bench/gpu/torch_bench.py" --device cuda
  grep "^torch" "$OUT/bench_torch.log" >>"$SUMMARY"
else
  note "torch: not importable with a GPU here; no PyTorch figures"
fi
machine_state "at the end"
note "== done in ${SECONDS}s"
