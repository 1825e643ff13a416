"""The web app's strings (``resources/webapp.yaml``): one place for every text a page or a report shows.

No Gradio here: the application service (``service.py``) uses these too.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import yaml

from .config import RESOURCES
from .errors import CoachError


@lru_cache(maxsize=1)
def strings() -> dict:
    return yaml.safe_load((RESOURCES / "webapp.yaml").read_text(encoding="utf-8"))



def t(path: str, **values) -> Any:
    """The string at ``path`` ("chat.send") with ``{placeholders}`` filled."""
    node: Any = strings()
    for key in path.split("."):
        node = node[key]
    return node.format(**values) if values and isinstance(node, str) else node



def message_for(exc: CoachError) -> str:
    """The error's one sentence in Chinese when the strings file knows it, else as it is."""
    text = str(exc)
    for rule in strings()["messages"]:
        match = re.search(rule["pattern"], text)
        if match:
            return rule["text"].format(**match.groupdict())
    return text



def difficulty_name(level: int | str | None) -> str:
    return strings()["difficulty"].get(int(level), str(level)) if str(level).isdigit() else str(level or "")

