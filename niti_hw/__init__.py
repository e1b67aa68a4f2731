"""niti-hw: a hardware co-design kit for NITI integer-only neural network training.

`niti_hw.golden` is the one definition of the integer arithmetic (see SPEC.md); every other part
(RTL, datapath model, GPU path) is an adapter checked against it bit for bit.
"""

import os

__version__ = "0.1.0"

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
"""torch's CPU allocator backs large tensors with transparent huge pages when this is set before
torch's first allocation (numpy does so by itself): a fresh 37 MB tensor otherwise costs ~30 ms of
page faults, more than the copy that fills it (VGG-small-7's im2col, 35 -> 4.8 ms)."""
