"""Native CPU loops, compiled on first use and loaded with ctypes.

Two libraries, one C file each:
- **`adamw_bf16.c`** (`kernels()`), for `agentgym.train.optim`'s `adamw_bf16`. torch runs its step as
  a dozen kernels per chunk (widen three bf16 tensors, the fused AdamW kernel, add noise, clear bits,
  narrow twice), each a pass over memory, plus Python's work per chunk: 0.3-0.45 s a step for
  SmolLM2-135M on two cores, against 0.11 s for fp32 AdamW's fused kernel. The C file does each job
  (the step, adding a gradient into its bf16 buffer, the sum of squares for the clip) in one loop
  over the elements. `parallel(fn, n, before, after)` splits `[0, n)` into one contiguous range per
  torch thread and runs `fn(*before, begin, end, *after)` on each, on this thread and a small pool;
  ctypes releases the GIL for the call. These loops use no OpenMP. Results match the torch path:
  the roundings bit for bit (same noise offsets), the update to fp32 rounding (tests).
- **`few_rows.c`** (`few_rows()`), for `agentgym.models.few_rows`: `y = x Wᵀ (+ b)` in fp32 for
  1-8 rows of `x`, one pass over `W` with AVX-512 and software prefetch. Each output is a dot product of a row of
  `x` with a row of `W`, summed in 16 lanes, then across them. It splits `W`'s rows across an OpenMP
  team. It is built with `-fopenmp` and runs only where that team is torch's own: torch's backend
  is OpenMP and the library resolves OpenMP's functions to the runtime torch's CPU library uses
  (torch's wheels ship `libgomp.so.1`, and the loader reuses a loaded library of that soname;
  other packages may load their own libgomp under another name, which is no concern). Otherwise a
  second runtime's threads would fight torch's for the cores. It also needs AVX-512; elsewhere it is not
  used.

Building: `_build(name, flags)` compiles `<name>.c` with the system C compiler (`$CC`, else `cc`;
`-O3 -march=native`, plus `flags`) into `<cache>/native/<name>-<hash>.so`. The hash covers the
source, the flags, the compiler's version and the CPU model. It loads the file; later calls (and
processes) reuse it. It returns None, after one warning that names the cause, when no compiler
works. Callers then keep their torch path. `AGENTGYM_NATIVE=0` turns both libraries off.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import functools
import hashlib
import itertools
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from agentgym.paths import cache_dir

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-shared", "-fPIC"]
MIN_SPLIT = 1 << 16
"""Ranges shorter than this run on the calling thread alone."""

_i64, _f32, _ptr = ctypes.c_int64, ctypes.c_float, ctypes.c_void_p


@functools.cache
def kernels() -> ctypes.CDLL | None:
    """adamw_bf16's compiled loops, or None when they cannot be built here (module doc)."""
    lib = _build(
        "adamw_bf16", [], "adamw_bf16: could not build its native loops ({}); using the slower torch path"
    )
    return None if lib is None else _declare(lib)


@functools.cache
def few_rows() -> ctypes.CDLL | None:
    """The few-row linear (`agl_linear`), or None where it cannot run as intended (module doc)."""
    if "parallel backend: OpenMP" not in torch.__config__.parallel_info():
        return None
    lib = _build(
        "few_rows",
        ["-fopenmp"],
        "few_rows: could not build its native loop ({}); decoding uses torch's linear",
    )
    if lib is None:
        return None
    lib.agl_linear.restype = None
    lib.agl_linear.argtypes = [_ptr, _ptr, _ptr, _ptr, _i64, _i64, _i64, _i64]
    lib.agl_lanes.restype = ctypes.c_int32
    lib.agl_lanes.argtypes = []
    if lib.agl_lanes() != 16:
        return None  # no AVX-512 here: MKL's sgemm is as fast as the portable loop
    lib.agl_omp_symbol.restype = _ptr
    lib.agl_omp_symbol.argtypes = []
    ours, torchs = lib.agl_omp_symbol(), _torch_omp_symbol()
    if ours is None or ours != torchs:
        log.warning("few_rows: its OpenMP runtime is not torch's; decoding uses torch's linear")
        return None
    return lib


def _torch_omp_symbol() -> int | None:
    """Where torch's CPU library finds `omp_get_num_threads` (None: no such library or symbol)."""
    path = Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"
    try:
        return ctypes.cast(ctypes.CDLL(str(path)).omp_get_num_threads, ctypes.c_void_p).value
    except (OSError, AttributeError):
        return None


def _build(name: str, flags: list[str], failure: str) -> ctypes.CDLL | None:
    """Compile `<name>.c` (once per source, flags, compiler and CPU) and load it (module doc)."""
    if os.environ.get("AGENTGYM_NATIVE", "1") == "0":
        return None
    source = HERE / f"{name}.c"
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        log.warning(failure.format("no C compiler: cc, gcc, $CC"))
        return None
    try:
        version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
        key = hashlib.sha256(
            "\0".join([source.read_text(), " ".join(FLAGS + flags), version, _cpu_model()]).encode()
        ).hexdigest()[:16]
        lib = cache_dir() / "native" / f"{name}-{key}.so"
        if not lib.exists():
            lib.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=lib.parent) as tmp:
                out = Path(tmp) / lib.name
                done = subprocess.run(
                    [cc, *FLAGS, *flags, "-o", str(out), str(source)],
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                if done.returncode != 0:
                    raise RuntimeError(done.stderr.strip() or f"{cc} exited with {done.returncode}")
                os.replace(out, lib)  # atomic: a concurrent process never loads half a file
        return ctypes.CDLL(str(lib))
    except (OSError, RuntimeError, subprocess.SubprocessError) as e:
        log.warning(failure.format(e))
        return None


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    lib.agb_step.restype = None
    lib.agb_step.argtypes = [_ptr, _ptr, _ptr, _ptr, _i64, _i64, *[_f32] * 8, _ptr, _i64, _i64, _i64]
    lib.agb_accumulate.restype = None
    lib.agb_accumulate.argtypes = [_ptr, _ptr, _i64, _i64, ctypes.c_int32, _ptr, _i64, _i64]
    lib.agb_sumsq.restype = ctypes.c_double
    lib.agb_sumsq.argtypes = [_ptr, _i64, _i64]
    return lib


def _cpu_model() -> str:
    """The CPU's model and flags (what `-march=native` compiles for)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().split("\n\n")[0].splitlines()
    except OSError:
        lines = []
    return "\n".join(x for x in lines if x.startswith(("model name", "flags"))) or platform.machine()


@functools.cache
def _pool(workers: int) -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="agentgym-native")


def parallel(fn: Callable[..., Any], n: int, before: tuple = (), after: tuple = ()) -> list[Any]:
    """`fn(*before, begin, end, *after)` over `[0, n)` split across torch's thread count (module
    doc); the results in order."""
    parts = max(1, min(torch.get_num_threads(), n // MIN_SPLIT))
    bounds = [n * i // parts for i in range(parts + 1)]
    spans = list(itertools.pairwise(bounds))
    futures = [_pool(parts - 1).submit(fn, *before, a, b, *after) for a, b in spans[1:]]
    first = fn(*before, *spans[0], *after)
    return [first, *(f.result() for f in futures)]
