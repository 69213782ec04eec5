"""Peak tensor memory of a forward pass, traced op by op, optionally without computing anything.

:class:`TensorPeakTracker` is a ``TorchDispatchMode`` that sees every tensor an aten op creates, keeps a
weak reference to its storage, and keeps a running sum of the bytes of the storages still alive: the
high-water mark of that sum is the pass's peak of live tensors. Under ``FakeTensorMode`` (tensors with
shapes and no data) the same pass runs in seconds at any length, so the peak of the real network at a
length no machine here could compute is read off the real code path.

What it cannot see, and what the measured RSS of real runs adds on top (``benchmarks/model_memory_limit.py``
measures it): the interpreter and libraries, the allocator's slack, and buffers a kernel allocates inside
itself without a dispatched op (BLAS packing, a kernel's private ``contiguous()`` copy).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


@dataclass(frozen=True)
class LiveTensor:
    """One storage alive at the peak: its bytes, the op and module that made it, and its shape."""

    nbytes: int
    op: str
    module: str
    shape: tuple[int, ...]


@dataclass
class PeakReport:
    """The high-water mark of live tensor bytes created inside a :class:`TensorPeakTracker`."""

    peak_bytes: int = 0
    peak_op: str = ""
    peak_module: str = ""
    live_at_peak: list[LiveTensor] = field(default_factory=list)
    # the highest peak seen inside each module (by qualified name), for a per-stage breakdown
    module_peaks: dict[str, int] = field(default_factory=dict)


class TensorPeakTracker(TorchDispatchMode):
    """Running sum of the bytes of live storages created by ops inside the mode, and its maximum.

    Tensors that existed before the mode was entered (parameters, inputs) are not counted: add them.
    ``model`` (optional) names the module running at each op, via forward hooks removed on exit.
    ``keep`` is how many of the largest live tensors the report lists at the peak.
    """

    def __init__(self, model: nn.Module | None = None, keep: int = 12):
        super().__init__()
        self.report = PeakReport()
        self.current = 0
        self._keep = keep
        self._live: dict[int, tuple[weakref.ref, LiveTensor]] = {}
        self._model = model
        self._stack: list[str] = []
        self._hooks: list = []

    def __enter__(self):
        if self._model is not None:
            for name, module in self._model.named_modules():
                self._hooks.append(module.register_forward_pre_hook(self._push(name or "<root>")))
                self._hooks.append(module.register_forward_hook(self._pop))
        return super().__enter__()

    def __exit__(self, *exc):
        for hook in self._hooks:
            hook.remove()
        self._hooks.clear()
        return super().__exit__(*exc)

    def _push(self, name: str) -> Callable:
        def hook(module, args):
            self._stack.append(name)

        return hook

    def _pop(self, module, args, output):
        self._stack.pop()

    def _freed(self, key: int) -> None:
        entry = self._live.pop(key, None)
        if entry is not None:
            self.current -= entry[1].nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        module = self._stack[-1] if self._stack else "<none>"
        # a view or an in-place result shares an input's storage: nothing new, even when that input was
        # made before the mode (a slice of a feature, an update of a caller's tensor)
        inputs = {x.untyped_storage()._cdata for x in tree_flatten((args, kwargs))[0]
                  if isinstance(x, torch.Tensor)}
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor):
                continue
            storage = t.untyped_storage()
            key = storage._cdata
            if key in self._live or key in inputs:
                continue
            info = LiveTensor(storage.nbytes(), str(func.overloadpacket.__name__), module, tuple(t.shape))
            self._live[key] = (weakref.ref(storage, lambda _ref, k=key: self._freed(k)), info)
            self.current += info.nbytes
        if self.current > self.report.peak_bytes:
            self.report.peak_bytes = self.current
            self.report.peak_op = str(func.overloadpacket.__name__)
            self.report.peak_module = module
            largest = sorted((info for _ref, info in self._live.values()), key=lambda i: -i.nbytes)
            self.report.live_at_peak = largest[: self._keep]
        for name in self._stack:
            if self.current > self.report.module_peaks.get(name, 0):
                self.report.module_peaks[name] = self.current
        return out


def tensor_bytes(tensors: Iterator[torch.Tensor] | Mapping[str, torch.Tensor]) -> int:
    """Bytes of distinct storages among ``tensors`` (a mapping's values, or an iterator)."""
    values = tensors.values() if isinstance(tensors, Mapping) else tensors
    seen: dict[int, int] = {}
    for t in values:
        storage = t.untyped_storage()
        seen[storage._cdata] = storage.nbytes()
    return sum(seen.values())


def empty_model(config) -> nn.Module:
    """An ``AlphaFold`` network of ``config`` with allocated, uninitialised weights: enough to trace, and
    untouched pages cost no resident memory."""
    from alphafold.model.model import AlphaFold

    with torch.device("meta"):
        model = AlphaFold(config)
    return model.to_empty(device="cpu").eval()


def trace_pass(
    model: nn.Module, tensors: Mapping[str, torch.Tensor], chunk_size: int | None
) -> PeakReport:
    """Peak of the live tensors made by one pass of the network (``recycle`` with num_recycle 0, as
    ``Predictor.predict`` runs it, outputs included) on ``tensors`` (the predictor's feature tensors,
    leading recycle axis), under ``FakeTensorMode``: nothing is computed. Weights and inputs not counted.
    """
    from alphafold.model.model import recycle

    with fake_mode() as mode, torch.inference_mode():
        fake = {k: mode.from_tensor(v) for k, v in tensors.items()}
        with TensorPeakTracker(model) as tracker:
            out, _ = recycle(model, fake, 0, chunk_size)
            del out
    return tracker.report


@contextmanager
def fake_mode() -> Iterator[torch._subclasses.fake_tensor.FakeTensorMode]:
    """A ``FakeTensorMode`` for tracing: convert the inputs with ``mode.from_tensor``; real tensors
    (a module's weights) may take part in ops and are read as fake ones, so nothing is computed."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode(allow_non_fake_inputs=True) as mode:
        yield mode
