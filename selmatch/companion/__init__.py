"""What only the book uses: cached experiment units, the results cache, presentation, the paper's table
and the notebook runner.

* :mod:`.units`  -- the paper's analyses as cached units (``Context``, ``window_eval``, ``selmatch_run``, ...),
  built on :mod:`selmatch.pipeline`, the same functions the command line calls.
* :mod:`.cache`  -- load-or-compute keyed by a hash of the config.
* :mod:`.report` -- tables, figures and conclusions from cached results.
* :mod:`.paper`  -- the paper's reported numbers.
* :mod:`.book`   -- ``python -m selmatch.companion.book``: execute the notebooks, write the status page, build.
"""
