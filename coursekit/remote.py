"""Call a student's code in its sandboxed kernel; get back plain data.

The trusted grader (:mod:`coursekit.judge`) never imports or runs student
code. It sends a request to the kernel ("call ``affine`` with these
arrays"); a small public harness in the kernel calls the student's
function and answers with *data only*: JSON whose arrays are ``.npy``
bytes (base64), read here with ``allow_pickle=False`` and only for
boolean, integer, float and complex dtypes. Anything else the student's
code returns (a function, an object of its own) stays in the kernel as a
numbered handle, :class:`Ref`, which the grader may call or pass back.
Containers (tuples, named tuples, lists, dicts) come back as data *and*
keep their handle, so a state the student's ``init`` made is passed back
to their ``update`` as the very object it was.

Nothing in a request is secret: inputs are fresh random arrays and public
code (:class:`Code`); expected values, references and mistakes stay in
the grader. A function whose *code* would give an answer away (the wrong
step of a derivation the student must find by evaluating it) stays in
the grader too, as :class:`Served`: in the kernel it is a stub, the same
code for every served function of a signature, that sends its arguments
back to the grader and returns the grader's answer (see
:meth:`Student.serve`). Whatever the kernel answers is untrusted: it is
size-capped (ZeroMQ's message limit, :mod:`coursekit.execute`), parsed
without evaluating anything, and validated here.
"""
from __future__ import annotations

import base64
import binascii
import io
import json
import math
import re
import secrets

import numpy as np

HARNESS_NAME = "__coursekit_harness__"

# The kernel side: public code, sent as text with the first request of
# each check (a notebook that ran ``%reset`` or deleted it gets it back).
HARNESS = r'''
def __coursekit_make_harness__():
    import base64, builtins, io, json, sys, traceback
    import numpy
    refs = {}
    pins = {}
    count = [0]
    user_ns = get_ipython().user_ns

    def keep(obj):
        count[0] += 1
        refs[count[0]] = obj
        return count[0]

    def enc(x, depth=0):
        if depth > 40:
            raise ValueError("the result is nested more than 40 levels deep")
        t = type(x)
        if x is None or t is bool or t is str:
            return {"v": x}
        if t is int:
            return {"i": str(x)}
        if t is float:
            return {"f": repr(x)}
        if t is complex:
            return {"c": [repr(x.real), repr(x.imag)]}
        if t is numpy.ndarray or isinstance(x, numpy.generic):
            arr = numpy.asarray(x)
            if arr.dtype.kind in "biufc" and arr.dtype.fields is None:
                buf = io.BytesIO()
                numpy.save(buf, arr, allow_pickle=False)
                return {"a": base64.b64encode(buf.getvalue()).decode(),
                        "scalar": t is not numpy.ndarray,
                        "type": t.__name__}
        if isinstance(x, tuple) and hasattr(t, "_fields"):
            return {"nt": t.__name__, "ref": keep(x),
                    "fields": [[f, enc(getattr(x, f), depth + 1)]
                               for f in t._fields]}
        if t is tuple or t is list:
            return {"seq": t.__name__, "ref": keep(x),
                    "items": [enc(i, depth + 1) for i in x]}
        if t is dict and all(type(k) is str for k in x):
            return {"dict": [[k, enc(v, depth + 1)] for k, v in x.items()],
                    "ref": keep(x)}
        return {"ref": keep(x), "type": f"{t.__module__}.{t.__qualname__}",
                "callable": callable(x)}

    def dec(x):
        if "v" in x:
            return x["v"]
        if "i" in x:
            return int(x["i"])
        if "f" in x:
            return float(x["f"])
        if "a" in x:
            arr = numpy.load(io.BytesIO(base64.b64decode(x["a"])),
                             allow_pickle=False)
            return arr[()] if x.get("scalar") else arr
        if "seq" in x:
            items = [dec(i) for i in x["items"]]
            return tuple(items) if x["seq"] == "tuple" else items
        if "dict" in x:
            return {k: dec(v) for k, v in x["dict"]}
        if "serve" in x:
            return served(x["serve"], x["as"], list(x["params"]))
        if "ref" in x:
            return refs[x["ref"]]
        if "name" in x or "pin" in x:
            name = x.get("name", x.get("pin"))
            if name not in user_ns:
                raise NameError(f"{name} is not defined in your "
                                f"notebook: did its cell run without an "
                                f"error?")
            if "pin" in x:          # looked up once: a handle from now on
                pins[name] = keep(user_ns[name])
            return user_ns[name]
        if "code" in x:
            ns = {"np": numpy, "numpy": numpy}
            if x.get("define"):
                exec(compile(x["code"], "<grader>", "exec"), ns)
                return ns[x["define"]]
            return eval(compile(x["code"], "<grader>", "eval"), ns)
        if "attr" in x:
            return getattr(dec(x["attr"][0]), x["attr"][1])
        raise ValueError("unknown request")

    def answer(payload):
        return base64.b64encode(json.dumps(payload).encode()).decode()

    ip = get_ipython()
    makers = {}

    def ask(token, args):
        # a call of a served function: its arguments go to the grader
        # (an input request of the execute request being answered), and
        # what the grader answers comes back as data
        prompt = SERVE_PREFIX + json.dumps(
            {"t": token, "args": [enc(a) for a in args]})
        got = json.loads(base64.b64decode(ip.kernel.raw_input(prompt)))
        if "error" in got:
            raise ValueError(got["error"])
        return dec(got["ok"])

    def served(token, name, params):
        # one text for every served function of this name and
        # signature: they differ only in the token
        if not all(type(p) is str and p.isidentifier()
                   for p in [name] + params):
            raise ValueError("malformed served function")
        key = (name, tuple(params))
        if key not in makers:       # one code object per signature
            args = ", ".join(params)
            src = (f"def _make(_ask, _token):\n"
                   f"    def {name}({args}):\n"
                   f"        return _ask(_token, [{args}])\n"
                   f"    return {name}\n")
            ns = {}
            exec(compile(src, "<grader>", "exec"), ns)
            makers[key] = ns["_make"]
        return makers[key](ask, token)

    def harness(request):
        pins.clear()
        try:
            req = json.loads(request)
            op = req["op"]
            if op == "has":
                return answer({"ok": {"v": req["name"] in user_ns}})
            target = dec(req["target"])
            if op == "call":
                args = [dec(a) for a in req["args"]]
                kwargs = {k: dec(v) for k, v in req["kwargs"].items()}
                result = target(*args, **kwargs)
            else:          # "get"
                result = target
            return answer({"ok": enc(result), "pins": dict(pins)})
        except BaseException as exc:
            tb = exc.__traceback__
            while tb is not None and tb.tb_frame.f_code.co_name in (
                    "harness", "dec", "enc", "answer"):
                tb = tb.tb_next     # the harness's own frames
            lines = [ln for ln in "".join(traceback.format_exception(
                type(exc), exc, tb)).splitlines()
                     if "__coursekit" not in ln][-8:]
            try:
                msg = str(exc)
            except BaseException:
                msg = "(the error could not be printed)"
            return answer({"error": type(exc).__name__, "msg": msg[:2000],
                           "tb": "\n".join(lines)[-3000:],
                           "pins": dict(pins)})

    return harness


__coursekit_harness__ = __coursekit_make_harness__()
del __coursekit_make_harness__
'''
#: how a served function's call starts its input request (the rest is
#: JSON: the token and the arguments, encoded as the harness's answers)
SERVE_PREFIX = "coursekit-served:"
HARNESS = HARNESS.replace("SERVE_PREFIX", repr(SERVE_PREFIX))


class StudentStop(BaseException):
    """The student's code did not answer: timeout, dead kernel, garbage.

    A BaseException, so that a check's ``except Exception`` cannot turn it
    into a misleading message: the judge reports it as it is.
    """


class HarnessMissing(StudentStop):
    """The kernel has no working harness (the notebook deleted or
    replaced it): installing it again answers the request."""


class StudentError(Exception):
    """The student's code raised an exception (re-raised in the grader)."""

    def __init__(self, ename: str, msg: str, tb: str = ""):
        super().__init__(f"{msg}")
        self.ename, self.msg, self.tb = ename, msg, tb


def _student_exception(ename: str, msg: str, tb: str) -> BaseException:
    """An exception the checks can catch by its usual name."""
    if ename == "NotImplementedError":
        return NotImplementedError(msg)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,60}", ename or ""):
        ename = "Error"
    cls = type(ename, (StudentError,), {})
    return cls(ename, msg, tb)


class Code:
    """Public code evaluated in the kernel, in a namespace of its own.

    ``Code("lambda v: np.sum(v ** 2)")`` is an expression;
    ``Code(src, define="f")`` runs ``src`` and passes the name ``f`` it
    defines. Never put an expected value or a mistake in it.
    """

    def __init__(self, src: str, define: str | None = None):
        self.src, self.define = src, define


class Refused(Exception):
    """Raised by a served function: its message is what the student's
    code gets (as a ValueError in the kernel). Any other exception of a
    served function gets one fixed message, so that how a call fails
    says nothing about which function was called."""


def served_array(value, shape, call: str, what: str,
                 means: str = "an array of numbers") -> np.ndarray:
    """An argument of a served function (see :meth:`Student.serve`) as a
    float64 array of ``shape``; anything else is refused with the same
    message whichever function is served (the student's code gets a
    ValueError naming ``call`` and ``what``)."""
    shape = tuple(shape)
    try:
        a = np.asarray(value)
        if a.dtype.kind not in "biuf":
            raise TypeError
        a = np.array(a, dtype=float)
    except (TypeError, ValueError):
        raise Refused(f"{call}: {what} must be {means} (shape "
                      f"{shape})") from None
    if a.shape != shape:
        raise Refused(f"{call}: {what} has shape {a.shape}; it must be "
                      f"{means} (shape {shape})")
    return a


class Served:
    """A grader-side function handed to the student's code (made by
    :meth:`Student.serve`). In the kernel it is a stub ``name(*params)``
    whose code, name, signature and closure are the same for every
    served function of that signature, but for a random token: what it
    computes can only be learnt by calling it."""

    def __init__(self, fn, name: str, params):
        self.fn, self.name, self.params = fn, name, tuple(params)
        self.token = secrets.token_hex(16)

    def __repr__(self) -> str:
        return f"<served {self.name}({', '.join(self.params)})>"


class Ref:
    """A handle to an object that lives in the kernel."""

    def __init__(self, student, ref: int, type_name: str = "",
                 is_callable: bool = False):
        self._student, self._ref = student, ref
        self.type_name, self.is_callable = type_name, is_callable

    _pin = None     # the name of S.function's handle, until looked up

    def __call__(self, *args, _timeout=None, **kwargs):
        return self._student._request("call", encode(self), args,
                                      kwargs, _timeout)

    def attr(self, name: str):
        return self._student._request("get", {"attr": [encode(self),
                                                       name]})

    def __repr__(self) -> str:
        return f"<student object of type {self.type_name}>"


class Record:
    """A named tuple the student returned, as data (fields by name)."""

    def __init__(self, typename: str, fields: dict, ref: int | None):
        self.typename, self._ck_ref = typename, ref
        self._fields = tuple(fields)
        self._values = dict(fields)

    def __getattr__(self, name):
        # Never a dunder or private name: NumPy looks ``__array_interface__``
        # (a raw data pointer) and ``__array__`` up on the instance, so a
        # field of that name would make np.asarray(record) read the
        # grader's memory at an address the student chose.
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(
                f"the student's {self.__dict__.get('typename')} has no "
                f"field {name!r} (fields: "
                f"{', '.join(self.__dict__.get('_fields', ()))})") from None

    def __iter__(self):
        return iter(self._values[f] for f in self._fields)

    def __len__(self):
        return len(self._fields)

    def __getitem__(self, i):
        return self._values[self._fields[i]]

    def _asdict(self):
        return dict(self._values)

    def __repr__(self):
        return f"{self.typename}({', '.join(self._fields)})"


class RTuple(tuple):
    _ck_ref = None


class RList(list):
    _ck_ref = None


class RDict(dict):
    _ck_ref = None


def _float(s) -> float:
    if not isinstance(s, str) or len(s) > 64:
        raise ValueError("not a number")
    return float(s)


def decode(student, x, depth: int = 0):
    """Untrusted JSON from the harness -> plain Python/NumPy data."""
    if depth > 45 or not isinstance(x, dict):
        raise ValueError("malformed answer from the kernel")
    if "v" in x:
        v = x["v"]
        if v is None or isinstance(v, (bool, str)):
            return v
        raise ValueError("malformed value")
    if "i" in x:
        s = x["i"]
        if not isinstance(s, str) or len(s) > 400:
            raise ValueError("integer too large")
        return int(s)
    if "f" in x:
        return _float(x["f"])
    if "c" in x:
        return complex(_float(x["c"][0]), _float(x["c"][1]))
    if "a" in x:
        try:
            raw = base64.b64decode(x["a"], validate=True)
            _check_npy_size(raw)
            arr = np.load(io.BytesIO(raw), allow_pickle=False)
        except (ValueError, binascii.Error, OSError, EOFError,
                MemoryError) as exc:
            raise ValueError(f"unreadable array: {exc}") from None
        if not isinstance(arr, np.ndarray) or arr.dtype.kind not in \
                "biufc" or arr.dtype.fields is not None:
            raise ValueError("array of an unsupported dtype")
        arr = np.array(arr, copy=True)
        if x.get("scalar"):
            return arr[()]      # a NumPy scalar, as the student returned
        return arr
    if "nt" in x:
        fields = {}
        for item in x["fields"]:
            name, val = item
            if not isinstance(name, str) or not name.isidentifier() or \
                    name.startswith("_"):
                raise ValueError("malformed field")
            fields[name] = decode(student, val, depth + 1)
        return Record(str(x["nt"])[:80], fields, _ref(x))
    if "seq" in x:
        items = [decode(student, i, depth + 1) for i in x["items"]]
        out = RTuple(items) if x["seq"] == "tuple" else RList(items)
        out._ck_ref = _ref(x)
        return out
    if "dict" in x:
        out = RDict()
        for k, v in x["dict"]:
            if not isinstance(k, str):
                raise ValueError("malformed dict")
            out[k] = decode(student, v, depth + 1)
        out._ck_ref = _ref(x)
        return out
    if "ref" in x:
        return Ref(student, _ref(x), str(x.get("type", ""))[:200],
                   bool(x.get("callable")))
    raise ValueError("malformed answer from the kernel")


def _check_npy_size(raw: bytes) -> None:
    """An ``.npy`` whose header claims more data than it holds (a forged
    shape: np.load would first allocate all of it) raises ValueError."""
    from numpy.lib import format as npy
    fp = io.BytesIO(raw)
    version = npy.read_magic(fp)
    read = npy.read_array_header_1_0 if version == (1, 0) else \
        npy.read_array_header_2_0
    shape, _, dtype = read(fp)
    need = math.prod(int(n) for n in shape) * dtype.itemsize
    if need > len(raw):
        raise ValueError(f"its header claims {need} bytes of data, it "
                         f"holds {len(raw)}")


def _ref(x):
    r = x.get("ref")
    if r is not None and (not isinstance(r, int) or isinstance(r, bool)):
        raise ValueError("malformed handle")
    return r


def encode(x, depth: int = 0):
    """Grader-side data -> a request item (never code of the student's)."""
    if depth > 40:
        raise ValueError("input nested too deeply")
    if isinstance(x, Ref):
        if x._ref is None:          # S.function's handle, not looked up yet
            return {"pin": x._pin}
        return {"ref": x._ref}
    ref = getattr(x, "_ck_ref", None)
    if isinstance(x, (Record, RTuple, RList, RDict)) and ref is not None:
        return {"ref": ref}
    if isinstance(x, Code):
        return {"code": x.src, "define": x.define}
    if isinstance(x, Served):
        return {"serve": x.token, "as": x.name, "params": list(x.params)}
    if x is None or isinstance(x, (bool, str)):
        return {"v": x}
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return {"i": str(int(x))}
    if isinstance(x, float):
        return {"f": repr(x)}
    if isinstance(x, (np.ndarray, np.generic)):
        buf = io.BytesIO()
        np.save(buf, np.asarray(x), allow_pickle=False)
        return {"a": base64.b64encode(buf.getvalue()).decode(),
                "scalar": isinstance(x, np.generic)}
    if isinstance(x, (tuple, list)):
        return {"seq": "tuple" if isinstance(x, tuple) else "list",
                "items": [encode(i, depth + 1) for i in x]}
    if isinstance(x, dict):
        return {"dict": [[str(k), encode(v, depth + 1)]
                         for k, v in x.items()]}
    raise TypeError(f"cannot send {type(x).__name__} to the kernel")


def _call(request: str, install: bool = False) -> str:
    """The expression that answers ``request`` in the kernel (after
    installing the harness, with ``install``: ``exec`` of its code, which
    is cheaper than running it as a cell).

    It travels as the execute request's *user expression*, evaluated
    with ``eval`` after an empty cell, not as the cell's code: IPython
    runs a cell's code through its input transformers (tokenizing the
    whole text, twice), which costs about 0.4 s per MB of arrays in the
    request (2.7 MB, the 4,000 held-out digits of a06: 1 s); the
    expression is compiled directly (60 ms).
    """
    call = f"{HARNESS_NAME}({request!r})"
    if install:
        return f"[exec({HARNESS!r}, globals()), {call}][1]"
    return call


_B64 = re.compile(r"[A-Za-z0-9+/=]*")
MAX_ITEMS = 1_000_000       # JSON items in one answer (grader's memory)


class Student:
    """The student's notebook, as the grader sees it: names to call.

    ``S.affine(X, W, b)`` calls the student's ``affine`` in the kernel on
    copies of the arrays and returns its result as data; ``S.value("lr")``
    fetches a variable; ``S.has("name")`` tells whether it is defined.
    ``execute(code, expr, timeout)`` is the transport (the kernel client):
    it runs ``code`` silently and returns the text of ``expr``.
    """

    def __init__(self, execute, timeout: float = 30.0, memo=None):
        self._execute = execute
        self.timeout = timeout
        self.calls = 0
        self._served: dict = {}      # token -> Served, for this check
        #: grader-side memory shared by the checks of one submission
        #: (e.g. a model trained once, judged by several cells)
        self.memo = {} if memo is None else memo

    # -- transport ----------------------------------------------------
    @property
    def _installed(self) -> bool:
        """Whether the harness is in the kernel: installed with the first
        request of a submission (remembered in ``memo``, which the
        checks of one submission share), again whenever the notebook
        has removed or replaced it since."""
        return bool(self.memo.get("__coursekit_harness__"))

    @_installed.setter
    def _installed(self, value: bool) -> None:
        self.memo["__coursekit_harness__"] = bool(value)

    def _send(self, request: str, timeout: float):
        """One round trip: the user expression (see ``_call``) answers
        the request, installing the harness first if it is not there."""
        install = not self._installed
        try:
            raw = self._transport(_call(request, install), timeout)
        except HarnessMissing:
            if install:
                raise
            # a cell deleted or replaced it since: nothing of the request
            # ran; install it again and ask once more
            raw = self._transport(_call(request, True), timeout)
        self._installed = True
        return raw

    def _transport(self, call: str, timeout: float):
        if self._served:      # the request may call served functions
            return self._execute("", call, timeout, on_input=self._answer)
        return self._execute("", call, timeout)

    def _answer(self, prompt) -> str:
        """The grader's answer to a served function's call (an input
        request of the kernel's): untrusted arguments, read as data."""
        def reply(payload):
            return base64.b64encode(json.dumps(payload).encode()).decode()
        if not isinstance(prompt, str) or \
                not prompt.startswith(SERVE_PREFIX):
            return reply({"error": "the grader answers only its own "
                                   "functions' calls"})
        text = prompt[len(SERVE_PREFIX):]
        try:
            if text.count(",") + text.count("[") + text.count("{") > \
                    MAX_ITEMS:
                raise ValueError("too many items")
            req = json.loads(text)
            served = self._served[req["t"]]
            args = [decode(self, a) for a in req["args"]]
        except (ValueError, TypeError, KeyError, RecursionError):
            return reply({"error": "the grader could not read this call"})
        if len(args) != len(served.params):
            return reply({"error": f"{served.name} takes "
                                   f"{len(served.params)} arguments"})
        self.calls += 1
        try:
            with np.errstate(all="ignore"):
                return reply({"ok": encode(served.fn(*args))})
        except Refused as exc:
            return reply({"error": str(exc)[:2000]})
        except Exception:  # noqa: BLE001
            return reply({"error": f"{served.name} could not be computed "
                                   f"for these arguments"})

    def _request(self, op, target, args=(), kwargs=None, timeout=None):
        req = {"op": op, "target": target,
               "args": [encode(a) for a in args],
               "kwargs": {k: encode(v) for k, v in (kwargs or {}).items()}}
        self.calls += 1
        return self._parse(self._send(json.dumps(req),
                                      timeout or self.timeout))

    def _parse(self, raw):
        if not isinstance(raw, str):
            raise StudentStop("the kernel gave no answer")
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
            raw = raw[1:-1]
        if not _B64.fullmatch(raw):
            raise StudentStop("the kernel's answer was not readable (was "
                              "the notebook's display machinery changed?)")
        try:
            data = base64.b64decode(raw)
            # JSON's parser builds every container before anything is
            # validated: 50 MB of "[]," are 15 million lists (a GB here).
            # Arrays travel as base64 text, so few items are ever needed.
            if data.count(b",") + data.count(b"[") + data.count(b"{") > \
                    MAX_ITEMS:
                raise StudentStop(f"the kernel's answer has more than "
                                  f"{MAX_ITEMS} items; return arrays, "
                                  f"not long lists")
            payload = json.loads(data)
        except (ValueError, RecursionError, binascii.Error):
            raise StudentStop("the kernel's answer was not readable") \
                from None
        if not isinstance(payload, dict):
            raise StudentStop("the kernel's answer was not readable")
        self._pinned(payload.get("pins"))
        if "error" in payload:
            raise _student_exception(str(payload.get("error")),
                                     str(payload.get("msg", ""))[:2000],
                                     str(payload.get("tb", ""))[-3000:])
        try:
            return decode(self, payload.get("ok"))
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            raise StudentStop(f"the result could not be read as data "
                              f"({exc})") from None

    # -- the checks' interface ------------------------------------------
    def call(self, name: str, *args, _timeout=None, **kwargs):
        return self._request("call", {"name": name}, args, kwargs,
                             _timeout)

    def run(self, code: "Code", *args, _timeout=None, **kwargs):
        """Call public code (``Code(src, define=name)``) in the kernel,
        e.g. a driver that runs many steps of the student's optimizer and
        returns the whole trajectory in one round trip."""
        if not isinstance(code, Code):
            raise TypeError("S.run takes a coursekit.remote.Code")
        return self._request("call", encode(code), args, kwargs, _timeout)

    def value(self, name: str):
        return self._request("get", {"name": name})

    def serve(self, fn, name: str, params) -> Served:
        """``fn`` (a grader-side function) as a value to pass to the
        student's code: there, a stub ``name(*params)`` that calls
        ``fn`` here with its arguments as data (arrays, numbers, lists,
        dicts; anything else as a :class:`Ref`) and returns ``fn``'s
        result as data. ``fn`` raises :class:`Refused` to refuse a call
        (the student's code gets a ValueError with its message). Served
        functions live as long as this check."""
        served = Served(fn, name, params)
        self._served[served.token] = served
        return served

    def function(self, name: str):
        """A handle to the student's ``name``, looked up once per check:
        every call of one check goes to the function its first lookup
        found, even if the student's code rebinds the name meanwhile.

        The lookup travels with the first request that passes the handle
        (no round trip of its own): the harness resolves the name, keeps
        the object and says under which handle; later requests send that
        handle."""
        cache = self.__dict__.setdefault("_functions", {})
        if name not in cache:
            ref = Ref(self, None)
            ref._pin = name
            cache[name] = ref
        return cache[name]

    def _pinned(self, pins) -> None:
        """Bind the handles of names the harness looked up (``pin``)."""
        if not isinstance(pins, dict):
            return
        cache = self.__dict__.get("_functions", {})
        for name, ref in pins.items():
            h = cache.get(name)
            if (isinstance(h, Ref) and h._ref is None
                    and isinstance(ref, int) and not isinstance(ref, bool)):
                h._ref = ref

    def has(self, name: str) -> bool:
        return bool(self._request_has(name))

    def _request_has(self, name):
        text = json.dumps({"op": "has", "name": name, "target": None})
        return self._parse(self._send(text, self.timeout))

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return _Named(self, name)


class _Named:
    """A name in the student's namespace, callable like the function."""

    def __init__(self, student, name):
        self._student, self.name = student, name

    def __call__(self, *args, **kwargs):
        return self._student.call(self.name, *args, **kwargs)

    def __repr__(self):
        return f"<student's {self.name}>"


def finite(x) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False
