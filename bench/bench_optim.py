"""Time one optimizer step: dlopt (NumPy, in-place path) vs torch.optim.

Run:  python bench/bench_optim.py [--sizes 1e6 1e7] [--repeat 15]
                                  [--runs 3] [--threads N]

For SGD, SGD with momentum and Adam on float32 parameters it times one
step of dlopt's in-place path (``check_finite`` off and on; and on 2
threads), dlopt's pure path, and torch.optim with ``foreach=True`` at
its default thread count and at 1 thread.  The variants are timed
round-robin (one call of each in turn), so a change in the load of the
shared machine hits them all alike; each variant's time is its best
over ``--repeat`` calls.  (torch at 1 thread has its own round-robin
pass with dlopt: switching torch's thread count between calls is
itself slow.)  The whole measurement is done ``--runs`` times: the
table shows the best run and, in brackets, the slowest run's best (the
spread).

Bandwidth.  A rule must read and write a fixed number of float32
arrays per step (SGD: read theta, g, write theta = 3; momentum: 5;
Adam: 7); bytes over time is its effective bandwidth.  The machine's
reference bandwidth is the best of several streaming kernels on 256 MB
arrays (far beyond the caches), each counted with the bytes it must
move: ``np.copyto`` (2 arrays; the hardware also reads the destination
before writing it, so a copy under-counts its traffic by a third),
in-place ``np.add`` ``a += b`` (3 arrays) on 1 and 2 threads, and BLAS
``saxpy`` (3 arrays, 1 thread).  The printout names the winner.  At 1M
parameters (4 MB per array) everything fits in the 32 MB L3 cache, so
fractions above 1 there are cache, not memory, bandwidth.

The header reports the BLAS libraries, their kernels (threadpoolctl)
and OPENBLAS_CORETYPE, which selects those kernels, and the load
average before and after (the machine is shared).
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import threadpoolctl
import torch
from scipy.linalg import blas

from dlopt import optim as O

ARRAYS = {"sgd": 3, "momentum": 5, "adam": 7}


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def round_robin(fns, repeat):
    """Best time of each ``fns[name]()`` over ``repeat`` rounds; in each
    round every function runs once, in turn."""
    for fn in fns.values():             # warm up
        fn()
    best = {name: float("inf") for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            best[name] = min(best[name], _timed(fn))
    return best


def bandwidth(threads=2, repeat=7):
    """Bytes per second of streaming kernels on 256 MB arrays, each
    counted with the bytes it must read and write."""
    n = 64 * 1024 * 1024            # 256 MB of float32
    a = np.ones(n, np.float32)
    b = np.ones(n, np.float32)
    pool = O._pool(threads)
    cuts = np.linspace(0, n, threads + 1).astype(int)
    parts = list(zip(cuts[:-1], cuts[1:]))

    def par(fn):
        def run():
            for f in [pool.submit(fn, lo, hi) for lo, hi in parts]:
                f.result()
        return run

    fns = {
        "np.copyto 1 thr": lambda: np.copyto(b, a),
        f"np.copyto {threads} thr": par(
            lambda lo, hi: np.copyto(b[lo:hi], a[lo:hi])),
        "a += b 1 thr": lambda: np.add(b, a, out=b),
        f"a += b {threads} thr": par(
            lambda lo, hi: np.add(b[lo:hi], a[lo:hi], out=b[lo:hi])),
        "saxpy 1 thr": lambda: blas.saxpy(a, b, a=1e-30),
    }
    arrays = {k: 2 if "copyto" in k else 3 for k in fns}
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        best = round_robin(fns, repeat)
    return {k: arrays[k] * a.nbytes / t for k, t in best.items()}


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
    """Best time (s) of one step of each variant, timed round-robin."""
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(n, dtype=np.float32)
    g = rng.standard_normal(n, dtype=np.float32)
    fns = {}
    for key, check, nt in (("dlopt", False, threads), ("dlopt2", False, 2),
                           ("dlopt_check", True, threads)):
        opt, _ = make(rule, check)
        params = {"w": p0.copy()}
        box = [opt.init(params)]

        def fast(opt=opt, params=params, box=box, nt=nt):
            _, box[0] = O.step(opt, params, {"w": g}, box[0], inplace=True,
                               threads=nt)
        fns[key] = fast
    opt, make_t = make(rule, False)
    pbox = [{"w": p0.copy()}]
    pbox.append(opt.init(pbox[0]))

    def pure():
        pbox[0], pbox[1] = O.step(opt, pbox[0], {"w": g}, pbox[1])
    fns["dlopt_pure"] = pure
    default = torch.get_num_threads()
    for key in ("torch", "torch1"):
        tp = torch.nn.Parameter(torch.from_numpy(p0.copy()))
        tp.grad = torch.from_numpy(g.copy())
        topt = make_t([tp])

        def tstep(topt=topt):
            with torch.no_grad():
                topt.step()
        fns[key] = tstep
    # Switching torch's thread count between calls is itself slow, so
    # torch at 1 thread gets its own round-robin pass (with dlopt again).
    one = {"dlopt": fns["dlopt"], "torch1": fns.pop("torch1")}
    best = round_robin(fns, repeat)
    torch.set_num_threads(1)
    try:
        best1 = round_robin(one, repeat)
    finally:
        torch.set_num_threads(default)
    best["dlopt"] = min(best["dlopt"], best1["dlopt"])
    best["torch1"] = best1["torch1"]
    return best


def blas_info():
    out = []
    for lib in threadpoolctl.threadpool_info():
        if lib["user_api"] != "blas":
            continue
        out.append(f"{os.path.basename(lib['filepath'])} "
                   f"{lib['internal_api']} {lib['version']} kernel "
                   f"{lib.get('architecture')}, {lib['num_threads']} thr")
    return "; ".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", nargs="+", type=float, default=[1e6, 1e7])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    threads = args.threads or O._default_threads()
    load0 = os.getloadavg()[0]
    print(f"# {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores; numpy {np.__version__}, torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads); "
          f"dlopt threads {threads} (BLAS held to 1 thread in a step)")
    print(f"# BLAS: {blas_info()}; OPENBLAS_CORETYPE="
          f"{os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    bws = {}
    for _ in range(args.runs):
        for k, v in bandwidth().items():
            bws[k] = max(bws.get(k, 0.0), v)
    ref_name = max(bws, key=bws.get)
    ref = bws[ref_name]
    print("# streaming bandwidth, GB/s (bytes each must move / time, "
          "256 MB arrays): "
          + ", ".join(f"{k} {v / 1e9:.1f}" for k, v in bws.items()))
    print(f"# reference = best of these: {ref_name}, {ref / 1e9:.1f} GB/s"
          f" (np.copyto alone: {bws['np.copyto 1 thr'] / 1e9:.1f})")
    cases = [(rule, int(n)) for n in args.sizes for rule in ARRAYS]
    runs = {c: [] for c in cases}
    for _ in range(args.runs):
        for rule, n in cases:
            runs[(rule, n)].append(bench(rule, n, args.repeat, threads))
    print(f"# best of {args.runs} runs x {args.repeat} round-robin calls"
          f" (in brackets: the slowest run's best); ratios < 1: dlopt "
          f"faster; 'best/best': the faster of dlopt's 1 and 2 threads "
          f"over the faster of torch's")
    print("| rule | params | dlopt ms | dlopt 2-thr ms | dlopt+check ms "
          "| dlopt pure ms | torch ms | torch 1-thr ms | dlopt/torch "
          "| best/best | dlopt GB/s | dlopt/ref bw | best torch/ref bw |")
    print("|---" * 13 + "|")

    def ms(r, worst, k):
        return f"{r[k] * 1e3:.2f} ({worst[k] * 1e3:.2f})"
    for rule, n in cases:
        rs = runs[(rule, n)]
        r = {k: min(x[k] for x in rs) for k in rs[0]}
        worst = {k: max(x[k] for x in rs) for k in rs[0]}
        tbest = min(r["torch"], r["torch1"])
        nbytes = ARRAYS[rule] * 4 * n
        bw = nbytes / r["dlopt"]
        print(f"| {rule} | {n / 1e6:g}M | {ms(r, worst, 'dlopt')} "
              f"| {ms(r, worst, 'dlopt2')} "
              f"| {r['dlopt_check'] * 1e3:.2f} "
              f"| {r['dlopt_pure'] * 1e3:.2f} "
              f"| {ms(r, worst, 'torch')} | {ms(r, worst, 'torch1')} "
              f"| {r['dlopt'] / r['torch']:.2f} "
              f"| {min(r['dlopt'], r['dlopt2']) / tbest:.2f} "
              f"| {bw / 1e9:.1f} | {bw / ref:.2f} "
              f"| {nbytes / tbest / ref:.2f} |", flush=True)
    print(f"# load average (1 min): {load0:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after")


if __name__ == "__main__":
    main()
