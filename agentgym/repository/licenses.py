"""Licence strings as crawled → SPDX ids, and which of them let a tool spec ship.

In: whatever a registry put in a server's licence field ("MIT License", "Apache 2.0",
"https://opensource.org/licenses/MIT", "Smithery", "Not specified", a server id pasted by mistake).
Out: `normalize_license(raw)` gives a canonical SPDX id ("MIT", "Apache-2.0", "GPL-3.0-only"), a
`LicenseRef-*` marker for a value that names no open licence (`LicenseRef-Smithery` for the
registry's hosting terms, `LicenseRef-Proprietary`, `LicenseRef-Unknown` for text that is not a
licence), or None when the field says nothing ("Not specified", empty). `is_permissive(spdx)` is
True only for the licences listed in `PERMISSIVE`; copyleft, unknown, unspecified, proprietary and
Smithery-hosted servers are never permissive. Pure functions; this module never guesses a licence
from anything but the string it is given.
"""

from __future__ import annotations

import re

PERMISSIVE = frozenset(
    {
        "MIT",
        "Apache-2.0",
        "BSD-2-Clause",
        "BSD-3-Clause",
        "ISC",
        "0BSD",
        "Unlicense",
        "CC0-1.0",
        "Zlib",
        "BSL-1.0",
        "MIT-0",
    }
)
"""SPDX ids whose terms allow redistributing the tool specs (with attribution, which provenance keeps)."""

SMITHERY = "LicenseRef-Smithery"
PROPRIETARY = "LicenseRef-Proprietary"
UNKNOWN = "LicenseRef-Unknown"

# Canonical SPDX ids we recognise; matched case-insensitively. Deprecated bare GPL-family ids map to
# their "-only" forms below, as the SPDX list recommends.
_SPDX = (
    *PERMISSIVE,
    "GPL-2.0-only",
    "GPL-2.0-or-later",
    "GPL-3.0-only",
    "GPL-3.0-or-later",
    "AGPL-3.0-only",
    "AGPL-3.0-or-later",
    "LGPL-2.1-only",
    "LGPL-2.1-or-later",
    "LGPL-3.0-only",
    "LGPL-3.0-or-later",
    "MPL-2.0",
    "EPL-1.0",
    "EPL-2.0",
    "CC-BY-4.0",
    "CC-BY-SA-4.0",
    "CC-BY-NC-4.0",
    "CC-BY-NC-SA-4.0",
    "Artistic-2.0",
    "WTFPL",
    "BUSL-1.1",
    "SSPL-1.0",
    "Elastic-2.0",
    "OSL-3.0",
    "EUPL-1.2",
)

# Aliases, keyed by `_key(text)`: lower case, every run of non-alphanumerics collapsed to one space.
_ALIASES: dict[str, str] = {
    **{_k: _id for _id in _SPDX for _k in (_id.lower().replace("-", " ").replace(".", " "),)},
    "mit license": "MIT",
    "the mit license": "MIT",
    "mit license mit": "MIT",
    "expat": "MIT",
    "mit 0": "MIT-0",
    "apache 2": "Apache-2.0",
    "apache 2 0": "Apache-2.0",
    "apache2": "Apache-2.0",
    "apache v2": "Apache-2.0",
    "apache license": "Apache-2.0",
    "apache license 2 0": "Apache-2.0",
    "apache license version 2 0": "Apache-2.0",
    "apache software license": "Apache-2.0",
    "apache software license 2 0": "Apache-2.0",
    "asl 2 0": "Apache-2.0",
    "apache 2 0 license": "Apache-2.0",
    "bsd 2 clause": "BSD-2-Clause",
    "bsd 2": "BSD-2-Clause",
    "simplified bsd": "BSD-2-Clause",
    "freebsd": "BSD-2-Clause",
    "bsd 2 clause license": "BSD-2-Clause",
    "bsd 3 clause": "BSD-3-Clause",
    "bsd 3": "BSD-3-Clause",
    "new bsd": "BSD-3-Clause",
    "modified bsd": "BSD-3-Clause",
    "bsd 3 clause license": "BSD-3-Clause",
    "isc license": "ISC",
    "zero clause bsd": "0BSD",
    "bsd zero clause": "0BSD",
    "0bsd": "0BSD",
    "the unlicense": "Unlicense",
    "unlicense": "Unlicense",
    "cc0": "CC0-1.0",
    "cc0 1 0": "CC0-1.0",
    "cc0 1 0 universal": "CC0-1.0",
    "zlib license": "Zlib",
    "boost": "BSL-1.0",
    "boost software license": "BSL-1.0",
    "boost software license 1 0": "BSL-1.0",
    "gpl 2": "GPL-2.0-only",
    "gpl 2 0": "GPL-2.0-only",
    "gplv2": "GPL-2.0-only",
    "gpl 3": "GPL-3.0-only",
    "gpl 3 0": "GPL-3.0-only",
    "gplv3": "GPL-3.0-only",
    "gnu gpl v3": "GPL-3.0-only",
    "gnu gplv3": "GPL-3.0-only",
    "gnu general public license v3 0": "GPL-3.0-only",
    "gpl 3 0 or later": "GPL-3.0-or-later",
    "gpl 2 0 or later": "GPL-2.0-or-later",
    "agpl 3": "AGPL-3.0-only",
    "agpl 3 0": "AGPL-3.0-only",
    "agplv3": "AGPL-3.0-only",
    "gnu agpl v3": "AGPL-3.0-only",
    "lgpl 3 0": "LGPL-3.0-only",
    "lgpl 2 1": "LGPL-2.1-only",
    "lgplv3": "LGPL-3.0-only",
    "mpl 2": "MPL-2.0",
    "mpl 2 0": "MPL-2.0",
    "mozilla public license 2 0": "MPL-2.0",
    "proprietary": PROPRIETARY,
    "commercial": PROPRIETARY,
    "all rights reserved": PROPRIETARY,
    "closed source": PROPRIETARY,
}
_UNSPECIFIED = frozenset(
    {
        "",
        "not specified",
        "unspecified",
        "none",
        "no license",
        "n a",
        "na",
        "null",
        "unknown",
        "not available",
        "other",
        "noassertion",
        "unlicensed",
        "see license",
        "see license file",
        "license",
    }
)


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def _lookup(key: str) -> str:
    if key in _ALIASES:
        return _ALIASES[key]
    trimmed = re.sub(r"\b(licen[sc]e|version|v)\b", " ", key)  # "MIT Licence", "Apache License Version 2.0"
    return _ALIASES.get(" ".join(trimmed.split()), UNKNOWN)


def normalize_license(raw: object) -> str | None:
    """The SPDX id (or `LicenseRef-*` marker, or None for "nothing said") of a crawled licence field."""
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    key = _key(text)
    if key in _UNSPECIFIED:
        return None
    if key == "smithery":  # the registry's hosting terms, not an open licence
        return SMITHERY
    url = re.match(r"(?i)^https?://([^/?#]+)(.*)$", text)
    if url:
        host = url.group(1).lower()
        if host.endswith(("smithery.ai", "simithery.ai")):
            return SMITHERY
        if host.endswith("apache.org") and re.search(r"(?i)/licenses/LICENSE-2\.0", url.group(2)):
            return "Apache-2.0"
        # A licence page names the licence in its last path segment (opensource.org/licenses/MIT,
        # choosealicense.com/licenses/apache-2.0/, spdx.org/licenses/BSD-3-Clause.html).
        m = re.search(
            r"/licen[sc]es?/([^/?#]+?)(?:\.html?|\.txt)?/?(?:[?#].*)?$", url.group(2), re.IGNORECASE
        )
        return _lookup(_key(m.group(1))) if m else UNKNOWN
    return _lookup(key)


def is_permissive(spdx: str | None) -> bool:
    """True when tool specs under this licence may be redistributed (see `PERMISSIVE`)."""
    return spdx in PERMISSIVE
