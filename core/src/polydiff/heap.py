"""Keep freed tensor memory in the process heap between sampling steps (glibc only).

Why: a step allocates a few tensors of the batch's size and frees those of the step before. At
batch 64 of 3x32x32 they are 786 KB, above glibc's mmap threshold, so each one is mapped,
page-faulted in and unmapped again, or the heap top is trimmed and re-faulted: the per-step
time of DDIM was bimodal (about 110 us in some calls, 630-730 us in others) and 3.4x slower
in the median on a busy machine (benchmarks/overhead.py). A fixed mmap threshold of 64 MiB and
a trim threshold of 256 MiB keep such blocks in the heap for reuse, at the price of up to
256 MiB not handed back to the system while idle. Done once per process, at the first
``sample``; ``POLYDIFF_KEEP_HEAP=0``, or setting ``MALLOC_MMAP_THRESHOLD_`` /
``MALLOC_TRIM_THRESHOLD_`` yourself, leaves malloc as it is.
"""
from __future__ import annotations

import functools
import os

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
MMAP_THRESHOLD = 64 << 20
TRIM_THRESHOLD = 256 << 20


@functools.cache
def keep_heap() -> bool:
    """Set glibc's thresholds as above; True when they were set."""
    if os.environ.get("POLYDIFF_KEEP_HEAP", "1") == "0":
        return False
    if any(k in os.environ for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")):
        return False
    import ctypes
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    except (OSError, AttributeError):
        return False
