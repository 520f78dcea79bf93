"""GPU benchmark: fusedem's CUDA backend against its CPU path, in one run.

    python benchmarks/bench_gpu.py            # full table (needs an NVIDIA GPU and numba-cuda)
    python benchmarks/bench_gpu.py --quick    # 512² and 2048² only, K = 16

Prints the device's name and its measured device-to-device copy bandwidth
(bytes read + written per second), then per size (3 elements, 30 outer
iterations, 3 TV iterations, the bench_solver data): the CPU time (numba, all
cores), the GPU time with the data resident on the GPU (kernels only, what a
batch or the panel sees per solve), the GPU time of a whole ``fuse`` call
(host normalisation and transfers included), and both against the copy bound
(76 B per element-pixel per outer iteration, bench_solver's figure). The
first GPU solve's compile/load time is reported separately. Then the batch
table: K parameter sets at once against K single solves. Every figure is a
median of ``--repeats`` runs.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_solver import BYTES_PER_ELEMENT_PIXEL, make_data  # noqa: E402


def gpu_bandwidth_gbs(reps: int = 10) -> float:
    """Device-to-device copy of 1 GiB, (read + write bytes) / s, GB/s."""
    from numba import cuda

    a = cuda.device_array(2**28, np.float32)
    b = cuda.device_array(2**28, np.float32)
    b.copy_to_device(a)
    cuda.synchronize()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        b.copy_to_device(a)
        cuda.synchronize()
        ts.append(time.perf_counter() - t)
    return 2 * a.nbytes / np.median(ts) / 1e9


def resident_solver(n: int, n_el: int, k: int = 1):
    """A CudaStepper for the bench data at n² with K parameter sets (λ's spread)."""
    from fusedem import FusionParams
    from fusedem.cuda.stepper import CudaStepper
    from fusedem.solver import channel_weights, prepare_inputs

    haadf, maps = make_data(n, n_el)
    bh, b, symbols, z, _ = prepare_inputs(haadf, maps)
    base = FusionParams(lambda_chem=0.08, lambda_tv=0.15, eps=0.24, n_iter=30, n_iter_tv=3)
    params = [base.replace(lambda_chem=0.08 * 1.1**i, lambda_tv=0.15 * 0.95**i) for i in range(k)]
    w = channel_weights(z, base.weighting, base.gamma).astype(np.float32)
    return CudaStepper(bh, b, w, 1.0 / len(symbols), params, history=30)


def time_resident(n: int, n_el: int, reps: int, k: int = 1) -> float:
    """Median seconds of 30 outer iterations of K problems, data on the GPU."""
    st = resident_solver(n, n_el, k)
    st.step()
    st.synchronize()
    ts = []
    for _ in range(reps):
        st = resident_solver(n, n_el, k)
        st.synchronize()
        t = time.perf_counter()
        for _ in range(30):
            st.step()
        st.synchronize()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def time_fuse(n: int, n_el: int, reps: int, device: str) -> float:
    from fusedem import fuse

    haadf, maps = make_data(n, n_el)
    kw = dict(n_iter=30, n_iter_tv=3, lambda_chem=0.08, lambda_tv=0.15, eps=0.24, device=device)
    fuse(haadf, maps, **{**kw, "n_iter": 1})
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fuse(haadf, maps, **kw)
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def first_solve_s() -> float:
    """Seconds of the first GPU solve in this process (kernel compile or cache load)."""
    from fusedem import fuse

    haadf, maps = make_data(64)
    t = time.perf_counter()
    fuse(haadf, maps, n_iter=2, device="cuda")
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cpu-max", type=int, default=4096, help="largest size timed on the CPU")
    args = ap.parse_args()
    import numba
    from numba import cuda

    from fusedem.cuda import device_name, resolve_device

    if resolve_device("auto") != "cuda":
        sys.exit("bench_gpu: no usable GPU here")
    first = first_solve_s()
    bw = gpu_bandwidth_gbs()
    free, total = cuda.current_context().get_memory_info()
    print(f"device: {device_name('cuda')}, {total / 2**30:.0f} GiB; copy bandwidth {bw:.0f} GB/s "
          f"(read + write); CPU: numba on {numba.get_num_threads()} threads")
    print(f"first GPU solve in this process (compile or load the kernels): {first:.2f} s\n")
    sizes = [(512, 3), (2048, 3)] if args.quick else [(512, 3), (2048, 3), (4096, 3), (8192, 4)]
    print("30 outer iterations, 3 TV iterations, medians; bound = 76 B/element-pixel/iteration "
          "at the GPU's copy bandwidth")
    print(f"{'size':>6} {'el':>3} {'CPU s':>8} {'GPU fuse s':>11} {'GPU resident ms':>16} "
          f"{'bound ms':>9} {'x bound':>8} {'CPU/GPU':>8}")
    for n, n_el in sizes:
        cpu = time_fuse(n, n_el, max(1, args.repeats // 2), "cpu") if n <= args.cpu_max else float("nan")
        gfuse = time_fuse(n, n_el, args.repeats, "cuda")
        res = time_resident(n, n_el, args.repeats)
        bound = BYTES_PER_ELEMENT_PIXEL * n_el * n * n * 30 / (bw * 1e9)
        print(f"{n:>5}² {n_el:>3} {cpu:>8.3f} {gfuse:>11.4f} {res * 1e3:>16.2f} {bound * 1e3:>9.2f} "
              f"{res / bound:>7.2f}x {cpu / gfuse:>7.1f}x", flush=True)
    free_after, _ = cuda.current_context().get_memory_info()
    print(f"GPU memory in use after the largest size: {(total - free_after) / 2**30:.1f} GiB of "
          f"{total / 2**30:.0f}")
    print("\nbatch: K parameter sets (λ_chem, λ_TV) solved at once, data resident, 3 elements")
    print(f"{'size':>6} {'K':>4} {'one solve ms':>13} {'K solves ms':>12} {'batch ms':>10} {'speed-up':>9}")
    ks = [16] if args.quick else [16, 64]
    for n in (512, 2048):
        one = time_resident(n, 3, args.repeats)
        for k in ks:
            bt = time_resident(n, 3, max(1, args.repeats // 2), k)
            print(f"{n:>5}² {k:>4} {one * 1e3:>13.2f} {k * one * 1e3:>12.1f} {bt * 1e3:>10.1f} "
                  f"{k * one / bt:>8.1f}x", flush=True)


if __name__ == "__main__":
    main()
