"""Reading a Prometheus text scrape in tests."""

from __future__ import annotations

from collections import defaultdict

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[str, list[tuple[dict[str, str], float]]]


def parse(text: str) -> Samples:
    """Sample name (as exposed: `_total`, `_bucket`...) -> [(labels, value)]."""
    samples: Samples = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name].append((dict(sample.labels), sample.value))
    return dict(samples)


def total(samples: Samples, name: str, **match: str) -> float:
    return sum(value for labels, value in samples.get(name, []) if all(labels.get(k) == v for k, v in match.items()))
