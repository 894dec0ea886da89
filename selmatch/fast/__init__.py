"""Speed and memory machinery: the same numbers as the plain PyTorch path, computed faster or in less memory.

* :mod:`.fastgrad`  -- ConvNet's block (conv -> norm -> ReLU -> pool) as one fused autograd operation with
  a cheap, exact second derivative (the default inside every ConvNet).
* :mod:`.recompute` -- a block recomputed instead of stored, inside a twice-differentiated unroll
  (``memory="recompute"``).
* :mod:`.constant`  -- trajectory matching in memory independent of ``syn_steps`` (``memory="constant"``).
* :mod:`.malloc`    -- training reuses freed memory on glibc (``SELMATCH_MALLOC``).

The method itself lives one level up; nothing here changes a result.
"""
