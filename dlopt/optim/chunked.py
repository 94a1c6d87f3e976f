"""One optimizer step, pure, and fast on large NumPy arrays.

``step(opt, params, grads, state) -> (params', state')`` is
``apply_updates(params, opt.update(grads, state, params)[0])``.  The
pure rules allocate a temporary array per operation; on 10M parameters
those temporaries live in main memory and every operation is a trip
through it.  So for large NumPy arrays ``step`` runs the *same*
``opt.update`` on cache-sized slices of the arrays (chunks of 2^18
elements), one after the other, and writes each slice's results into
the new arrays: the temporaries then stay in cache and memory is read
and written about once per array, as a hand-written in-place kernel
would.  There is no second definition of any rule: this driver knows
nothing about optimizers, only that every element is updated on its own
(``opt.chunkable``; ``clip_by_global_norm`` is not, and then the whole
arrays go through at once).  The result is bit for bit the pure path's.

Nothing passed in is mutated: the new params and state are new arrays.
Fresh large arrays cost page faults (the kernel zeroes every page on
first touch), so the new arrays come from a small pool of buffers that
are reused only once nothing else refers to them (reference count; a
view of a buffer counts too).  In a loop ``p, s = step(opt, p, g, s)``
the previous step's arrays are free again when the next step runs.
The chunks' temporaries (about a megabyte each) must not cost page
faults either: glibc's malloc returns freed memory at the top of its
heap to the system once more than a threshold is free (and then faults
it in again at the next chunk: 37,000 faults per Adam step at 10M
parameters, measured), so the first chunked step raises that threshold
to 64 MB with ``mallopt`` (glibc only; ``DLOPT_MALLOPT=0`` skips it).
"""
from __future__ import annotations

import contextvars
import ctypes
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .base import CHECKED, GradientTransformation, apply_updates, check_grads

__all__ = ["step"]

# Elements per chunk: 1 MB of float32 per array. At 10M parameters
# (bench sweep of 2^16..2^20, 1 and 2 threads, load 1.7) 2^18 was the
# fastest or within 5 % for SGD, momentum and Adam; at 2^19 Adam's
# temporaries leave the 2 MB L2 cache (31 -> 68 ms on one thread).
CHUNK = 1 << 18
# Below this many elements in all (8 MB of float32) the whole arrays and
# their temporaries stay in the 32 MB L3 cache anyway, and chunks only
# add Python calls: at 1M parameters the whole-array path was faster for
# SGD and momentum in each of three bench runs (bench/bench_optim.py).
MIN_CHUNKED = 1 << 21
_POOLED = 1 << 20        # bytes; smaller arrays are cheap to allocate
_FREE_PER_SHAPE = 8      # free buffers kept per (shape, dtype)
_POOL: dict = {}


def _base_refs():
    bucket = [np.empty(1)]
    return sys.getrefcount(bucket[0])


_FREE_REFS = _base_refs()   # refs of a buffer held only by the pool


def _empty(shape, dtype):
    """``np.empty`` from the pool: a buffer nobody else refers to."""
    dtype = np.dtype(dtype)
    if int(np.prod(shape)) * dtype.itemsize < _POOLED:
        return np.empty(shape, dtype)
    bucket = _POOL.setdefault((tuple(shape), dtype), [])
    free = [i for i in range(len(bucket))
            if sys.getrefcount(bucket[i]) == _FREE_REFS]
    for i in reversed(free[_FREE_PER_SHAPE:]):     # keep the pool small
        del bucket[i]
    if free:
        return bucket[free[0]]
    buf = np.empty(shape, dtype)
    bucket.append(buf)
    return buf


_MALLOPT_DONE = False


def _keep_heap():
    """Keep freed chunk temporaries in the heap (see the docstring)."""
    global _MALLOPT_DONE
    if _MALLOPT_DONE:
        return
    _MALLOPT_DONE = True
    if os.environ.get("DLOPT_MALLOPT") == "0" or \
            not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 << 20)   # M_MMAP_THRESHOLD: 32 MB (the max)
        libc.mallopt(-1, 64 << 20)   # M_TRIM_THRESHOLD: 64 MB
    except (OSError, AttributeError):   # not glibc: nothing to tune
        pass


def _per_array(x, params) -> bool:
    return isinstance(x, dict) and x.keys() == params.keys()


def _map_state(fn, state, params):
    """Apply ``fn`` to every per-array dict (keys = params' keys) in a
    nested state; scalars and ``None`` pass through."""
    if _per_array(state, params):
        return fn(state)
    if hasattr(state, "_fields"):
        return type(state)(*(_map_state(fn, s, params) for s in state))
    if isinstance(state, tuple):
        return tuple(_map_state(fn, s, params) for s in state)
    return state


def _write(out, res, params, job):
    """Copy a chunk's results ``res`` into the new arrays ``out``."""
    if _per_array(out, params):
        for k, sl in job:
            out[k].reshape(-1)[sl] = res[k]
    elif isinstance(out, tuple):
        for o, r in zip(out, res):
            _write(o, r, params, job)


def _rebuild(res, out, params):
    """The new state: arrays from ``out``, scalars from a chunk's
    result ``res`` (every chunk computes the same scalars)."""
    if _per_array(out, params):
        return out
    if hasattr(res, "_fields"):
        return type(res)(*(_rebuild(r, o, params)
                           for r, o in zip(res, out)))
    if isinstance(res, tuple):
        return tuple(_rebuild(r, o, params) for r, o in zip(res, out))
    return res


def _jobs(sizes: dict, chunk: int):
    """Lists of ``(key, slice)`` of about ``chunk`` elements each: long
    arrays are cut, short ones are grouped."""
    jobs, group, n = [], [], 0
    for k, size in sizes.items():
        if size > chunk:
            jobs += [[(k, slice(lo, min(lo + chunk, size)))]
                     for lo in range(0, size, chunk)]
            continue
        group.append((k, slice(0, size)))
        n += size
        if n >= chunk:
            jobs.append(group)
            group, n = [], 0
    return jobs + ([group] if group else [])


def _threads() -> int:
    """``DLOPT_THREADS``, else ``OMP_NUM_THREADS`` (as torch and BLAS
    read it; the grading sandbox sets 1), else the cores this process may
    use, at most 4: chunks are memory-bound, and on 2 cores the second
    thread took Adam's step at 10M parameters from 78 to 40 ms, under
    load (bench/bench_optim.py)."""
    for name in ("DLOPT_THREADS", "OMP_NUM_THREADS"):
        env = os.environ.get(name, "").strip()
        if env.isdigit():
            return max(1, int(env))
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:                      # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


_EXECUTOR = None


def _pool(n):
    global _EXECUTOR
    if _EXECUTOR is None or _EXECUTOR._max_workers != n:
        _EXECUTOR = ThreadPoolExecutor(max_workers=n)
    return _EXECUTOR


def step(opt: GradientTransformation, params: dict, grads: dict, state,
         *, chunk: int | None = None, threads: int | None = None):
    """One optimizer step: ``(params, state) -> (params', state')``.

    Pure: ``params``, ``grads`` and ``state`` are not modified.  For
    NumPy arrays and a chunkable ``opt``, the update runs chunk by chunk
    (see the module docstring): by default in chunks of 2^18 elements
    once there are more than 2^21 in all; with an explicit ``chunk``
    whenever there are more than ``chunk``; ``chunk=0`` turns it off.  Either way the
    numbers are the same, bit for bit.  ``threads`` spreads the chunks
    over that many threads (default: ``DLOPT_THREADS``, else
    ``OMP_NUM_THREADS``, else the usable cores, at most 4).
    """
    least = MIN_CHUNKED if chunk is None else 0
    chunk = CHUNK if chunk is None else int(chunk)
    fast = (chunk > 0 and opt.chunkable and isinstance(params, dict)
            and isinstance(grads, dict)
            and all(isinstance(v, np.ndarray) for v in params.values())
            and all(isinstance(v, np.ndarray) for v in grads.values())
            and sum(v.size for v in params.values()) > max(chunk, least))
    if not fast:
        updates, state = opt.update(grads, state, params)
        return apply_updates(params, updates), state
    # Keys, types, shapes and dtypes once, on the whole arrays; each
    # slice's update then checks only its values (base.CHECKED).
    check_grads(grads, params, finite=False)
    _keep_heap()
    flat_p = {k: v.reshape(-1) for k, v in params.items()}
    flat_g = {k: grads[k].reshape(-1) for k in params}
    flat_s = _map_state(lambda d: {k: v.reshape(-1) for k, v in d.items()},
                        state, params)
    new_p = {k: _empty(v.shape, v.dtype) for k, v in params.items()}
    new_s = _map_state(lambda d: {k: _empty(v.shape, v.dtype)
                                  for k, v in d.items()}, state, params)
    jobs = _jobs({k: v.size for k, v in flat_p.items()}, chunk)

    def work(my_jobs):
        CHECKED.set(True)   # this thread's own context (see below)
        for job in my_jobs:
            p = {k: flat_p[k][sl] for k, sl in job}
            g = {k: flat_g[k][sl] for k, sl in job}
            s = _map_state(lambda d: {k: d[k][sl] for k, sl in job},
                           flat_s, params)
            u, s = opt.update(g, s, p)
            for k, sl in job:
                np.add(p[k], u[k], out=new_p[k].reshape(-1)[sl])
            _write(new_s, s, params, job)
            results.append(s)

    results = []
    threads = _threads() if threads is None else max(1, int(threads))
    # Each run of ``work`` sets CHECKED in a copy of the caller's context,
    # so the flag never leaks out of this step.
    if threads == 1 or len(jobs) < 2 * threads:
        contextvars.copy_context().run(work, jobs)
    else:
        # NumPy releases the GIL inside its loops, so chunks can run
        # side by side; each thread writes its own slices.
        size = -(-len(jobs) // threads)
        parts = [jobs[i:i + size] for i in range(0, len(jobs), size)]
        futures = [_pool(threads).submit(contextvars.copy_context().run,
                                         work, part) for part in parts]
        for f in futures:
            f.result()
    return new_p, _rebuild(results[0], new_s, params)
