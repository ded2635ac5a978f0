"""One measured point: the scenario, its parameters, the server and what was measured."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: How a point's status starts when the bench could not measure it (a finding, such as a
#: deadline or a refusal, is not a failure).
FAILED = ("server failed", "server died", "connect failed")


@dataclass
class Result:
    scenario: str
    variant: str
    params: dict[str, Any]
    server: str
    figures: dict[str, Any]

    @property
    def failed(self) -> bool:
        return str(self.figures.get("status", "")).startswith(FAILED)
