"""Detect host synchronisation: reads of a tensor's value on the host inside a sampling loop."""
from __future__ import annotations

import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

SYNC_OPS = {"_local_scalar_dense", "nonzero", "masked_select", "equal", "is_nonzero"}


class HostSyncs(TorchDispatchMode):
    """Records ops that read a tensor's value on the host (``.item()``, ``bool(t)``, ``float(t)``,
    boolean-mask indexing): on an accelerator each one waits for the device.

    With ``watch``, only values computed from the watched tensors count (taint tracking), so
    host-side arithmetic on fresh CPU tensors, e.g. looking up a schedule, is not reported."""

    def __init__(self, watch=None):
        super().__init__()
        self.ops = []
        self._watched = None if watch is None else {}
        for t in watch or ():
            self.watch(t)

    def watch(self, t) -> torch.Tensor:
        key = id(t)
        self._watched[key] = weakref.ref(t, lambda _, key=key: self._watched.pop(key, None))
        return t

    def _is_watched(self, t):
        ref = self._watched.get(id(t))
        return ref is not None and ref() is t

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = [a for a in tree_flatten((args, kwargs))[0] if isinstance(a, torch.Tensor)]
        if self._watched is None or any(self._is_watched(a) for a in inputs):
            name = func.overloadpacket.__name__
            if name in SYNC_OPS or (name == "index" and _bool_index(args)):
                self.ops.append(name)
            if self._watched is not None:
                for o in tree_flatten(out)[0]:
                    if isinstance(o, torch.Tensor):
                        self.watch(o)
        return out


def _bool_index(args):
    """Boolean-mask indexing: its output shape depends on the data."""
    return len(args) > 1 and any(i is not None and i.dtype == torch.bool for i in args[1])
