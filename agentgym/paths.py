"""Where agentgym finds its data (`tools/`, `tasks/`) and keeps its caches.

Data: `$AGENTGYM_DATA` if set, else the source checkout the package sits in, else the copy shipped
inside the wheel (`agentgym/_data`). Cache: `$AGENTGYM_CACHE`, else `~/.cache/agentgym`.
"""

from __future__ import annotations

import os
from pathlib import Path

_PKG = Path(__file__).resolve().parent


def data_root() -> Path:
    env = os.environ.get("AGENTGYM_DATA")
    if env:
        return Path(env)
    checkout = _PKG.parent
    if (checkout / "tools").is_dir() and (checkout / "tasks").is_dir():
        return checkout
    return _PKG / "_data"


def tools_dir() -> Path:
    return data_root() / "tools"


def tasks_dir() -> Path:
    return data_root() / "tasks"


def cache_dir() -> Path:
    p = Path(os.environ.get("AGENTGYM_CACHE", Path.home() / ".cache" / "agentgym"))
    p.mkdir(parents=True, exist_ok=True)
    return p
