"""Native CPU loops for `adamw_bf16` (`adamw_bf16.c`), compiled on first use and loaded with ctypes.

torch runs `adamw_bf16`'s step as a dozen kernels per chunk (widen three bf16 tensors, the fused
AdamW kernel, add noise, clear bits, narrow twice), each a pass over memory, plus Python's work per
chunk: 0.3-0.45 s a step for SmolLM2-135M on two cores, against 0.11 s for fp32 AdamW's fused
kernel. `adamw_bf16.c` does each job (the step, adding a gradient into its bf16 buffer, the sum of
squares for the clip) in one loop over the elements.

- `kernels()` compiles the source with the system C compiler (`$CC`, else `cc`; `-O3
  -march=native`) into `<cache>/native/adamw_bf16-<hash>.so`, the hash covering the source, the
  flags, the compiler's version and the CPU model, and loads it; later calls (and processes) reuse
  the file. It returns None, after one warning that names the cause, when no compiler works; the
  optimizer then keeps its torch path, which computes the same update.
- `parallel(fn, n, before, after)` splits `[0, n)` into one contiguous range per torch thread and
  runs `fn(*before, begin, end, *after)` on each, on this thread and a small pool; ctypes releases
  the GIL for the call. The loops use no OpenMP, so they start no second OpenMP team beside torch's
  (see `TransformersChatModel.call`).
- Results match the torch path: the roundings bit for bit (same noise offsets), the update to fp32
  rounding (tests).
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

SOURCE = Path(__file__).with_name("adamw_bf16.c")
FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-shared", "-fPIC"]
MIN_SPLIT = 1 << 16
"""Ranges shorter than this run on the calling thread alone."""

_i64, _f32, _ptr = ctypes.c_int64, ctypes.c_float, ctypes.c_void_p


@functools.cache
def kernels() -> ctypes.CDLL | None:
    """The compiled loops, or None when they cannot be built here (module doc)."""
    if os.environ.get("AGENTGYM_NATIVE", "1") == "0":
        return None
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        log.warning("adamw_bf16: no C compiler (cc, gcc, $CC) found; using the slower torch path")
        return None
    try:
        version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
        key = hashlib.sha256(
            "\0".join([SOURCE.read_text(), " ".join(FLAGS), version, _cpu_model()]).encode()
        ).hexdigest()[:16]
        lib = cache_dir() / "native" / f"adamw_bf16-{key}.so"
        if not lib.exists():
            lib.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=lib.parent) as tmp:
                out = Path(tmp) / lib.name
                done = subprocess.run(
                    [cc, *FLAGS, "-o", str(out), str(SOURCE)], capture_output=True, text=True, timeout=120
                )
                if done.returncode != 0:
                    raise RuntimeError(done.stderr.strip() or f"{cc} exited with {done.returncode}")
                os.replace(out, lib)  # atomic: a concurrent process never loads half a file
        return _declare(ctypes.CDLL(str(lib)))
    except (OSError, RuntimeError, subprocess.SubprocessError) as e:
        log.warning("adamw_bf16: could not build its native loops (%s); using the slower torch path", e)
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
