"""Time one optimizer step: dlopt.optim.step vs torch.optim (foreach).

Run:  python bench/bench_optim.py [--sizes 1e6 1e7] [--repeat 15]
                                  [--runs 3]

For SGD, SGD with momentum and Adam on float32 parameters it times one
step of ``dlopt.optim.step`` (pure; large arrays go through the generic
chunk driver; on 1 and on 2 threads), the same without chunks
(``chunk=0``: the pure rules on whole arrays), and ``torch.optim``
with ``foreach=True`` (torch's default thread count; torch updates in
place).  The variants are timed
round-robin (one call of each in turn), so a change in the load of the
shared machine hits them all alike; each variant's time is its best
over ``--repeat`` calls, and the whole measurement is repeated
``--runs`` times (the table shows the best run and, in brackets, the
slowest run's best).

Isolation: the benchmark copies ``dlopt`` into a fresh temporary
directory and imports it from there (no bytecode cache, no editable
install), and every array is allocated and touched before timing.

The NumPy floor.  A pure step writes new arrays: the params, and for
momentum and Adam each per-parameter state array (1, 2 and 3 arrays).
The floor writes that many arrays, each in one ufunc pass from two
inputs into a preallocated output with no Python in between: no pure
NumPy step of the rule can be faster, however it is written.
``floor/torch`` > 1 means that parity with torch's in-place kernels is
out of reach for a pure NumPy step on this machine; ``floor 2-thr`` is
the same floor with each array written half by each of 2 threads (torch
uses both cores). "2-thr no check" is dlopt on 2 threads with
``check_finite=False``: the same work as torch, which does not look for
NaN or inf gradients.

Bandwidth.  A rule must read and write a fixed number of float32
arrays per step (SGD: read theta, g, write theta = 3; momentum: 5;
Adam: 7); bytes over time is its effective bandwidth.  The reference
is the measured copy bandwidth, ``np.copyto`` on 256 MB arrays (far
beyond the caches) counted as 2 arrays (the hardware also reads the
destination before writing it, so this under-counts a copy's traffic
by a third), and in-place ``a += b`` (3 arrays).  At 1M parameters (4
MB per array) everything fits in the L3 cache, so fractions above 1
there are cache, not memory, bandwidth.
"""
from __future__ import annotations

import argparse
import importlib
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
ARRAYS = {"sgd": 3, "momentum": 5, "adam": 7}
POOL = ThreadPoolExecutor(max_workers=2)


def isolated_dlopt():
    """``dlopt.optim`` imported from a fresh copy of the package."""
    tmp = Path(tempfile.mkdtemp(prefix="bench_optim_"))
    shutil.copytree(REPO / "dlopt", tmp / "dlopt",
                    ignore=shutil.ignore_patterns("__pycache__"))
    sys.dont_write_bytecode = True
    for name in [m for m in sys.modules if m.split(".")[0] == "dlopt"]:
        del sys.modules[name]
    sys.path.insert(0, str(tmp))
    optim = importlib.import_module("dlopt.optim")
    assert Path(optim.__file__).is_relative_to(tmp), optim.__file__
    return optim, tmp


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


def bandwidth(repeat=7):
    """Bytes per second of streaming kernels on 256 MB arrays, each
    counted with the bytes it must read and write."""
    a = np.ones(64 * 1024 * 1024, np.float32)
    b = np.ones_like(a)
    best = round_robin({"copy": lambda: np.copyto(b, a),
                        "a += b": lambda: np.add(b, a, out=b)}, repeat)
    return {"copy": 2 * a.nbytes / best["copy"],
            "a += b": 3 * a.nbytes / best["a += b"]}


def make(O, rule, **kw):
    if rule == "sgd":
        return (O.sgd(1e-3, **kw),
                lambda p: torch.optim.SGD(p, lr=1e-3, foreach=True))
    if rule == "momentum":
        return (O.sgd(1e-3, momentum=0.9, **kw),
                lambda p: torch.optim.SGD(p, lr=1e-3, momentum=0.9,
                                          foreach=True))
    return (O.adam(1e-3, **kw),
            lambda p: torch.optim.Adam(p, lr=1e-3, foreach=True))


def bench(O, rule, n, repeat):
    """Best time (s) of one step of each variant, timed round-robin."""
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(n, dtype=np.float32)
    g = {"w": rng.standard_normal(n, dtype=np.float32)}
    opt, make_t = make(O, rule)
    # torch checks nothing; dlopt's named optimizers refuse a NaN or inf
    # gradient (one more read of it): "no check" is the same work as torch
    unchecked, _ = make(O, rule, check_finite=False)
    fns = {}
    for key, chunk, nt, o in (("dlopt", None, 1, opt),
                              ("dlopt2", None, 2, opt),
                              ("dlopt2_nc", None, 2, unchecked),
                              ("dlopt_whole", 0, 1, opt)):
        box = [{"w": p0.copy()}]
        box.append(o.init(box[0]))

        def run(box=box, chunk=chunk, nt=nt, o=o):
            box[0], box[1] = O.step(o, box[0], g, box[1], chunk=chunk,
                                    threads=nt)
        fns[key] = run
    # The NumPy floor: the new arrays a pure step must write (params, and
    # each per-parameter state array), each written by one ufunc pass
    # from two inputs into a preallocated output, with no Python between.
    # No pure NumPy step of this rule can be faster; torch updates in
    # place, with fused or multithreaded kernels.
    writes = {"sgd": 1, "momentum": 2, "adam": 3}[rule]
    ins = [p0.copy() for _ in range(writes)]
    outs = [np.empty_like(p0) for _ in range(writes)]
    for o in outs:
        o.fill(0.0)

    def floor():
        for a, o in zip(ins, outs):
            np.add(a, g["w"], out=o)
    fns["floor"] = floor
    # ... and on 2 threads (NumPy releases the GIL in its loops), each
    # writing one half of every array: torch uses both cores too.
    half = n // 2
    parts = [slice(0, half), slice(half, n)]

    def floor_half(sl):
        for a, o in zip(ins, outs):
            np.add(a[sl], g["w"][sl], out=o[sl])

    def floor2():
        for f in [POOL.submit(floor_half, sl) for sl in parts]:
            f.result()
    fns["floor2"] = floor2
    tp = torch.nn.Parameter(torch.from_numpy(p0.copy()))
    tp.grad = torch.from_numpy(g["w"].copy())
    topt = make_t([tp])

    def tstep():
        with torch.no_grad():
            topt.step()
    fns["torch"] = tstep
    return round_robin(fns, repeat)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", nargs="+", type=float, default=[1e6, 1e7])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    O, tmp = isolated_dlopt()
    load0 = os.getloadavg()
    print(f"# {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores; python {platform.python_version()}, "
          f"numpy {np.__version__}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads); dlopt copied to {tmp}")
    bws = {}
    for _ in range(args.runs):
        for k, v in bandwidth().items():
            bws[k] = max(bws.get(k, 0.0), v)
    ref = bws["copy"]
    print(f"# bandwidth (256 MB arrays, bytes each must move / time): "
          f"copy {bws['copy'] / 1e9:.1f} GB/s (the reference), a += b "
          f"{bws['a += b'] / 1e9:.1f} GB/s")
    cases = [(rule, int(n)) for n in args.sizes for rule in ARRAYS]
    runs = {c: [] for c in cases}
    for _ in range(args.runs):
        for rule, n in cases:
            runs[(rule, n)].append(bench(O, rule, n, args.repeat))
    print(f"# best of {args.runs} runs x {args.repeat} round-robin calls "
          f"(in brackets: the slowest run's best); dlopt/torch < 1: "
          f"dlopt faster")
    print("| rule | params | dlopt ms | dlopt 2-thr ms | dlopt 2-thr no "
          "check ms | dlopt whole-array ms | NumPy floor ms | floor 2-thr ms "
          "| torch ms | dlopt/torch | dlopt 2-thr/torch | 2-thr no check/"
          "torch | floor/torch | floor 2-thr/torch | dlopt GB/s | dlopt/copy "
          "bw | torch/copy bw |")
    print("|---" * 17 + "|")

    def ms(r, worst, k):
        return f"{r[k] * 1e3:.2f} ({worst[k] * 1e3:.2f})"
    for rule, n in cases:
        rs = runs[(rule, n)]
        r = {k: min(x[k] for x in rs) for k in rs[0]}
        worst = {k: max(x[k] for x in rs) for k in rs[0]}
        nbytes = ARRAYS[rule] * 4 * n
        bw = nbytes / r["dlopt"]
        print(f"| {rule} | {n / 1e6:g}M | {ms(r, worst, 'dlopt')} "
              f"| {ms(r, worst, 'dlopt2')} | {ms(r, worst, 'dlopt2_nc')} "
              f"| {ms(r, worst, 'dlopt_whole')} | {ms(r, worst, 'floor')} "
              f"| {ms(r, worst, 'floor2')} | {ms(r, worst, 'torch')} "
              f"| {r['dlopt'] / r['torch']:.2f} "
              f"| {r['dlopt2'] / r['torch']:.2f} "
              f"| {r['dlopt2_nc'] / r['torch']:.2f} "
              f"| {r['floor'] / r['torch']:.2f} "
              f"| {r['floor2'] / r['torch']:.2f} | {bw / 1e9:.1f} "
              f"| {bw / ref:.2f} | {nbytes / r['torch'] / ref:.2f} |",
              flush=True)
    print(f"# load average (1, 5 min): {load0[0]:.2f} {load0[1]:.2f} "
          f"before, {os.getloadavg()[0]:.2f} after")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
