"""Run every benchmark: `python benchmarks/run.py`. Each prints ratios measured in this run."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import bench_core
import bench_fleet
import bench_langchain


def main() -> None:
    logging.basicConfig(level=logging.ERROR)  # the outage runs log every failed refresh as a warning
    print("== Cache layers")
    bench_core.bench_memory()
    bench_core.bench_redis()
    print("== Fleet and outages")
    bench_fleet.bench_cold_fleet()
    bench_fleet.bench_outages()
    print("== LangChain")
    bench_langchain.bench_templates()
    bench_langchain.bench_assignment()


if __name__ == "__main__":
    main()
