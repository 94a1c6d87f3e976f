"""In-kernel guard: undo a submission's tampering before each test cell.

The grader's kernel (:mod:`coursekit.sandbox`) imports the libraries the
tests rely on and calls :func:`snapshot` *before* any student code runs.
Before every graded test cell the grader runs :func:`restore`, which puts
back what a submission may have patched in the meantime:

* module attributes of numpy, torch, dlopt, math, builtins, IPython and
  ipykernel (``np.allclose = lambda *a, **k: True``), the attributes of
  the classes they define (``torch.Tensor.numpy = ...``) and the code of
  their Python functions (``check_array.__code__ = ...``);
* ``sys.modules`` entries (a fake ``torch``), import hooks, trace and
  profile functions, ``sys.displayhook``/``excepthook``, signal handlers
  and pending alarms;
* the IPython shell's input/AST transformers, event callbacks, custom
  exception handlers and any method replaced on the shell instance (the
  machinery a notebook could use to swallow a failing test's error);
* the notebook names bound by the locked (instructor) cells, e.g.
  ``check_array`` from the setup cell, and the builtins a test may use
  (``isinstance = lambda *a: True`` in the notebook).

Same-process Python cannot be made tamper-proof: code that studies this
module could still defeat it. The guard removes the easy ways to fake a
pass; the sandbox makes sure that whatever a submission does, it can only
change its own grade. :func:`restore` returns the list of what it undid,
which the grader records in the cell's metadata for the instructor.
"""
from __future__ import annotations

import builtins
import signal
import sys
import threading
import types
import warnings

_PREFIXES = ("builtins", "math", "operator", "functools", "numpy", "torch",
             "dlopt", "IPython", "ipykernel", "copy", "inspect")
_DATA_PREFIXES = ("numpy", "torch", "dlopt", "math", "builtins")
_FUNC_PREFIXES = ("numpy", "dlopt", "math", "functools", "copy", "inspect")
_BUILTIN_SHADOWS = (
    "isinstance", "issubclass", "type", "abs", "float", "int", "len", "all",
    "any", "max", "min", "sum", "range", "zip", "enumerate", "print",
    "tuple", "list", "dict", "set", "bool", "round", "repr", "str",
    "getattr", "hasattr", "setattr", "callable", "iter", "next", "map",
    "filter", "sorted", "super", "object", "id", "vars", "__import__",
    "Exception", "BaseException", "AssertionError", "ValueError",
    "TypeError", "NotImplementedError", "KeyError", "IndexError")

_state: dict = {}


def _wanted(name: str, prefixes=_PREFIXES) -> bool:
    return name.split(".")[0] in prefixes


def snapshot() -> None:
    """Record the pristine state (call once, before any student code)."""
    mods, classes, funcs = {}, {}, {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, mod in list(sys.modules.items()):
            if not isinstance(mod, types.ModuleType) or not _wanted(name):
                continue
            d = dict(vars(mod))
            mods[name] = (mod, d)
            for v in d.values():
                if (isinstance(v, type) and getattr(v, "__module__", None)
                        == name and id(v) not in classes):
                    try:
                        classes[id(v)] = (v, dict(vars(v)))
                    except TypeError:
                        pass
                elif (isinstance(v, types.FunctionType)
                      and _wanted(name, _FUNC_PREFIXES)):
                    funcs[id(v)] = (v, v.__code__, v.__defaults__,
                                    v.__kwdefaults__)
    _state.update(
        mods=mods, classes=classes, funcs=funcs,
        builtins=dict(vars(builtins)), threads=None, shell=None,
        locked={})


def snapshot_shell(shell) -> None:
    """Record the IPython shell's hooks (call once the kernel is up)."""
    _state["shell"] = dict(
        obj=shell,
        instance_keys=set(vars(shell)),
        custom_exceptions=shell.custom_exceptions,
        CustomTB=shell.CustomTB,
        input_transformers_cleanup=list(shell.input_transformers_cleanup),
        input_transformers_post=list(shell.input_transformers_post),
        ast_transformers=list(shell.ast_transformers),
        events={k: list(v) for k, v in shell.events.callbacks.items()},
    )
    _state["threads"] = {t.ident for t in threading.enumerate()}
    _state["sys"] = dict(displayhook=sys.displayhook,
                         excepthook=sys.excepthook,
                         meta_path=list(sys.meta_path),
                         path_hooks=list(sys.path_hooks))
    _state["signals"] = {s: signal.getsignal(s) for s in
                         (signal.SIGALRM, signal.SIGTERM,
                          signal.SIGVTALRM, signal.SIGPROF)}


def mark_locked(user_ns: dict, names) -> None:
    """Remember the values an instructor cell bound to ``names``."""
    for n in names:
        if n in user_ns:
            _state["locked"][n] = user_ns[n]


_SKIP_BUILTINS = {"_", "exit", "quit", "copyright", "credits", "license",
                  "help", "get_ipython", "display", "__IPYTHON__",
                  "__spec__", "__loader__", "__doc__", "__name__",
                  "__package__"}
_CODE_TYPES = (types.FunctionType, types.BuiltinFunctionType, type,
               types.ModuleType, classmethod, staticmethod, property,
               types.MethodType, types.WrapperDescriptorType,
               types.MethodDescriptorType, types.MethodWrapperType,
               types.BuiltinMethodType)


def _is_code(v, data: bool) -> bool:
    """Callables, classes and modules; with ``data``, numbers too.

    Module globals that hold caches or counters change legitimately
    while a library works; functions, classes and constants do not.
    """
    if isinstance(v, _CODE_TYPES) or callable(v):
        return True
    return data and isinstance(v, (int, float, complex, str, bytes))


def _restore_dict(target: dict, saved: dict, label: str, undone: list,
                  data: bool = True, skip=()):
    for k, v in saved.items():
        if k in skip or not _is_code(v, data):
            continue
        if target.get(k, _MISSING) is not v:
            try:
                target[k] = v
            except TypeError:
                continue
            undone.append(f"{label}.{k}")


_MISSING = object()


def restore(user_ns: dict | None = None) -> list[str]:
    """Undo tampering; return a description of everything restored."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # deprecated torch attributes
        return _restore(user_ns)


def _restore(user_ns: dict | None) -> list[str]:
    undone: list[str] = []
    st = _state
    if not st:
        return ["guard: no snapshot (kernel not started by the sandbox)"]
    _stop_threads(undone)
    sys.settrace(None)
    threading.settrace(None)
    sys.setprofile(None)
    threading.setprofile(None)
    _restore_dict(vars(builtins), st["builtins"], "builtins", undone,
                  skip=_SKIP_BUILTINS)
    for name, (mod, saved) in st["mods"].items():
        if sys.modules.get(name) is not mod:
            sys.modules[name] = mod
            undone.append(f"sys.modules[{name!r}]")
        if mod is not builtins:
            _restore_dict(vars(mod), saved, name, undone,
                          data=_wanted(name, _DATA_PREFIXES),
                          skip=("__builtins__",))
    for cls, saved in st["classes"].values():
        for k, v in saved.items():
            if not isinstance(v, (types.FunctionType, classmethod,
                                  staticmethod, property)):
                continue
            if cls.__dict__.get(k, _MISSING) is not v:
                try:
                    setattr(cls, k, v)
                    undone.append(f"{cls.__module__}.{cls.__name__}.{k}")
                except (TypeError, AttributeError):
                    pass
    for f, code, defaults, kwdefaults in st["funcs"].values():
        if (f.__code__ is not code or f.__defaults__ is not defaults
                or f.__kwdefaults__ is not kwdefaults):
            f.__code__, f.__defaults__ = code, defaults
            f.__kwdefaults__ = kwdefaults
            undone.append(f"{f.__module__}.{f.__qualname__}.__code__")
    s = st.get("sys", {})
    for k in ("displayhook", "excepthook"):
        if k in s and getattr(sys, k) is not s[k]:
            setattr(sys, k, s[k])
            undone.append(f"sys.{k}")
    for k in ("meta_path", "path_hooks"):
        if k in s and getattr(sys, k) != s[k]:
            getattr(sys, k)[:] = s[k]
            undone.append(f"sys.{k}")
    for sig, handler in st.get("signals", {}).items():
        if signal.getsignal(sig) is not handler:
            signal.signal(sig, handler)
            undone.append(f"signal {signal.Signals(sig).name}")
    if signal.alarm(0):
        undone.append("signal.alarm")
    for timer in (signal.ITIMER_REAL, signal.ITIMER_VIRTUAL,
                  signal.ITIMER_PROF):
        if signal.getitimer(timer)[0]:
            signal.setitimer(timer, 0)
            undone.append("signal.setitimer")
    sh = st["shell"]
    if sh:
        shell = sh["obj"]
        for k in set(vars(shell)) - sh["instance_keys"]:
            if callable(vars(shell)[k]):
                delattr(shell, k)
                undone.append(f"shell.{k}")
        for k in ("custom_exceptions", "CustomTB"):
            if getattr(shell, k) is not sh[k]:
                setattr(shell, k, sh[k])
                undone.append(f"shell.{k}")
        for k in ("input_transformers_cleanup", "input_transformers_post",
                  "ast_transformers"):
            if getattr(shell, k) != sh[k]:
                getattr(shell, k)[:] = sh[k]
                undone.append(f"shell.{k}")
        cbs = shell.events.callbacks
        for k, v in sh["events"].items():
            if cbs.get(k) != v:
                cbs[k] = list(v)
                undone.append(f"shell.events[{k!r}]")
    if user_ns is not None:
        if user_ns.get("__builtins__") is not builtins:
            user_ns["__builtins__"] = builtins
            undone.append("__builtins__")
        for n in _BUILTIN_SHADOWS:
            if n in user_ns:
                del user_ns[n]
                undone.append(f"notebook name {n!r} (shadows a builtin)")
        for n, v in st["locked"].items():
            if user_ns.get(n, _MISSING) is not v:
                user_ns[n] = v
                undone.append(f"notebook name {n!r} (set by the course)")
    return undone


def _stop_threads(undone: list) -> None:
    """Raise SystemExit in Python threads a submission started."""
    import ctypes
    known = _state.get("threads")
    if not known:
        return
    for t in threading.enumerate():
        if t.ident in known or not t.is_alive():
            continue
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(t.ident), ctypes.py_object(SystemExit))
        t.join(0.5)
        undone.append(f"thread {t.name!r} stopped")


def extra_threads() -> list[str]:
    """Names of threads started since the kernel came up."""
    if st_threads := _state.get("threads"):
        return [t.name for t in threading.enumerate()
                if t.ident not in st_threads and t.is_alive()]
    return []
