"""Reading YAML data files: `load_yaml(text_or_stream)` is `yaml.safe_load` with libyaml's C
parser where PyYAML was built with it (about 10x faster on the taxonomy and the starter world),
the pure-Python safe loader otherwise. Same documents, same Python values; never executes tags."""

from __future__ import annotations

from typing import IO, Any

import yaml

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(source: str | bytes | IO[str]) -> Any:
    return yaml.load(source, Loader=_LOADER)
