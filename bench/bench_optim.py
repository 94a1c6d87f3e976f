"""Time one optimizer step: dlopt (NumPy, in-place path) vs torch.optim.

Run:  python bench/bench_optim.py [--sizes 1e6 1e7] [--repeat 15]

For SGD, SGD with momentum and Adam on float32 parameters it prints the
best time of one step over ``--repeat`` runs (the machine is shared, so
the minimum is the least noisy estimate), the ratio dlopt / torch
(below 1: dlopt is faster) and the effective bandwidth: the bytes a rule
must read and write per step (SGD: read theta, g, write theta = 3
arrays; momentum: 5; Adam: 7) over the time, as a fraction of the
machine's copy bandwidth measured in the same run (``np.copyto`` of a
256 MB array,
read + write, best of several; single-threaded, and the same copy split
over the thread pool).  torch.optim runs with foreach=True and its
default thread count (and with 1 thread); dlopt with
``DLOPT_THREADS`` threads (default 1).  ``check_finite`` (a read of
the gradients per step) is timed on and off.
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from dlopt import optim as O

ARRAYS = {"sgd": 3, "momentum": 5, "adam": 7}


def median_time(fn, repeat):
    fn()
    fn()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(min(ts))


def copy_bandwidth(threads=2, repeat=7):
    n = 64 * 1024 * 1024            # 256 MB of float32
    src = np.ones(n, np.float32)
    dst = np.empty_like(src)
    best1 = min(_timed(lambda: np.copyto(dst, src)) for _ in range(repeat))
    pool = O._pool(threads)
    halves = np.array_split(np.arange(n), threads)
    bounds = [(h[0], h[-1] + 1) for h in halves]

    def par():
        fs = [pool.submit(np.copyto, dst[a:b], src[a:b]) for a, b in bounds]
        for f in fs:
            f.result()
    bestp = min(_timed(par) for _ in range(repeat))
    # streaming a += b (read 2, write 1) reaches more than a copy
    besta = min(_timed(lambda: np.add(dst, src, out=dst))
                for _ in range(repeat))
    return (2 * src.nbytes / best1, 2 * src.nbytes / bestp,
            3 * src.nbytes / besta)


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def make(rule, check):
    if rule == "sgd":
        return (O.sgd(1e-3, check_finite=check),
                lambda p: torch.optim.SGD(p, lr=1e-3, foreach=True))
    if rule == "momentum":
        return (O.sgd(1e-3, momentum=0.9, check_finite=check),
                lambda p: torch.optim.SGD(p, lr=1e-3, momentum=0.9,
                                          foreach=True))
    return (O.adam(1e-3, check_finite=check),
            lambda p: torch.optim.Adam(p, lr=1e-3, foreach=True))


def bench(rule, n, repeat, threads):
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(n, dtype=np.float32)
    g = rng.standard_normal(n, dtype=np.float32)
    res = {}
    for check in (False, True):
        opt, _ = make(rule, check)
        params = {"w": p0.copy()}
        grads = {"w": g}
        state = opt.init(params)
        box = [state]

        def run():
            _, box[0] = O.step(opt, params, grads, box[0], inplace=True,
                               threads=threads)
        res["dlopt_check" if check else "dlopt"] = median_time(run, repeat)
    # pure (allocating) path, for reference
    opt, make_t = make(rule, False)
    params = {"w": p0.copy()}
    box = [opt.init(params), params]

    def pure():
        box[1], box[0] = O.step(opt, box[1], {"w": g}, box[0])
    res["dlopt_pure"] = median_time(pure, max(3, repeat // 3))
    nthreads = torch.get_num_threads()
    for key, nt in (("torch", nthreads), ("torch1", 1)):
        torch.set_num_threads(nt)
        tp = torch.nn.Parameter(torch.from_numpy(p0.copy()))
        tp.grad = torch.from_numpy(g.copy())
        topt = make_t([tp])
        with torch.no_grad():
            res[key] = median_time(topt.step, repeat)
    torch.set_num_threads(nthreads)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", nargs="+", type=float, default=[1e6, 1e7])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    threads = args.threads or O._default_threads()
    bw1, bwp, bwa = copy_bandwidth()
    print(f"# {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores; numpy {np.__version__}, torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads); "
          f"dlopt threads {threads}")
    print(f"# copy bandwidth (np.copyto, read+write): 1 thread "
          f"{bw1 / 1e9:.1f} GB/s, 2 threads {bwp / 1e9:.1f} GB/s; "
          f"in-place np.add (read 2, write 1): {bwa / 1e9:.1f} GB/s")
    print("| rule | params | dlopt ms | dlopt+check ms | dlopt pure ms "
          "| torch ms | torch 1-thr ms | dlopt/torch | dlopt GB/s "
          "| frac of 1-thr copy | frac of 2-thr copy "
          "| torch frac of 1-thr copy |")
    print("|---" * 12 + "|")
    for n in args.sizes:
        n = int(n)
        for rule in ARRAYS:
            r = bench(rule, n, args.repeat, threads)
            nbytes = ARRAYS[rule] * 4 * n
            bw = nbytes / r["dlopt"]
            print(f"| {rule} | {n / 1e6:g}M | {r['dlopt'] * 1e3:.2f} "
                  f"| {r['dlopt_check'] * 1e3:.2f} "
                  f"| {r['dlopt_pure'] * 1e3:.2f} "
                  f"| {r['torch'] * 1e3:.2f} | {r['torch1'] * 1e3:.2f} "
                  f"| {r['dlopt'] / r['torch']:.2f} "
                  f"| {bw / 1e9:.1f} | {bw / bw1:.2f} | {bw / bwp:.2f} "
                  f"| {nbytes / r['torch'] / bw1:.2f} |", flush=True)


if __name__ == "__main__":
    main()
