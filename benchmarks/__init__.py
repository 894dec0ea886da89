"""Performance benchmarks for ``selmatch`` (``make bench``), measured against the official code's figures.

Run from the repository root: ``python -m benchmarks [--quick] [--only distill memory throughput book]``.
Every figure is printed next to its target and written to ``benchmarks/results.json``; ratios are
measured side by side in one run, so machine noise largely cancels.
"""
