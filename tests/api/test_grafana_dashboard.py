"""The shipped Grafana dashboard graphs only series /metrics exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from autoquant.operator.api.metrics import Metrics
from autoquant.runtime.config import Config

DASHBOARD = Path(__file__).resolve().parents[2] / "config" / "grafana-autoquant.json"


def test_every_series_in_the_dashboard_is_exposed() -> None:
    """Each autoquant_* name the panels query is a sample name the API's registry produces."""
    exposed: set[str] = set()
    for family in Metrics(Config()).registry.collect():
        exposed |= {family.name, *(sample.name for sample in family.samples)}
        if family.type == "counter":
            exposed.add(f"{family.name}_total")  # a labelled counter has no sample before its first inc
        if family.type == "histogram":
            exposed.add(f"{family.name}_bucket")
    panels = json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"]
    queried = {
        name
        for panel in panels
        for target in panel["targets"]
        for name in re.findall(r"autoquant_\w+", target["expr"])
    }
    assert queried and queried <= exposed, sorted(queried - exposed)
