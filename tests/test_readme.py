"""The README's Python example runs as written (and ends with reward 1.0)."""

from __future__ import annotations

import re
from pathlib import Path


def test_readme_python_blocks_run():
    text = (Path(__file__).parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks
    scope: dict = {}
    for b in blocks:
        exec(compile(b, "README.md", "exec"), scope)
    assert scope["reward"] == 1.0 and scope["terminated"]
