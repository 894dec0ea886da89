"""What only the book uses: cached experiment units, the results cache, the pages, presentation, the paper's
table and the notebook runner.

* :mod:`.units`  -- the paper's analyses as cached units (``Context``, ``window_eval``, ``selmatch_run``, ...), each
  a :class:`~.cache.Job` builder, built on :mod:`selmatch.pipeline`, the same functions the command line calls.
* :mod:`.cache`  -- load-or-compute keyed by a hash of the config; ``Job`` and ``run`` (many jobs, serially or on Ray).
* :mod:`.pages`  -- one module per analysis page: its data, figures, tables, conclusions (and claims for page 10).
* :mod:`.report` -- what every page shares: notes, tables, the printed rerun commands.
* :mod:`.stats`  -- the paired verdict rule.
* :mod:`.paper`  -- the paper's reported numbers.
* :mod:`.figures` -- the method figure.
* :mod:`.book`   -- ``python -m selmatch.companion.book``: execute the notebooks, write the status page, build.
"""
