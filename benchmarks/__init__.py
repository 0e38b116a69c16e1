"""Speed and memory benchmarks (``python -m benchmarks.walk``); results with device and date in RESULTS.md."""
