"""Errors of the config package.

    ConfigError            one or more problems found in a configuration
      └─ holds Problem     the YAML path of the bad key and the rule it broke

Every problem in a file is collected before raising, so an operator fixes them all in one pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One bad key: where it is (``plugins[0].config.timeout``) and the rule it broke."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(Exception):
    """A configuration that must not be used, with every problem found in it."""

    def __init__(self, problems: Iterable[Problem], source: str = "") -> None:
        self.problems: Sequence[Problem] = tuple(problems)
        self.source = source
        super().__init__(self.describe())

    def describe(self) -> str:
        heading = f"{self.source}: " if self.source else ""
        count = len(self.problems)
        lines = [f"{heading}{count} problem{'s' if count != 1 else ''} in the configuration:"]
        lines.extend(f"  {problem}" for problem in self.problems)
        return "\n".join(lines)


def format_path(loc: Sequence[str | int]) -> str:
    """``("plugins", 0, "config", "timeout")`` -> ``plugins[0].config.timeout``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text
