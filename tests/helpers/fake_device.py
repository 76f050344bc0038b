"""A stand-in for a GPU on a CPU-only machine, to catch tensors that do not follow their model's device.

On CUDA, a method that makes a tensor on the CPU (``torch.arange(n)``, a mask
from ``.cpu()``) and combines it with a tensor of the model's device fails:
``Expected all tensors to be on the same device``, or, when a CPU tensor is
indexed with device indices, ``indices should be either on cpu or on the same
device as the indexed tensor (cpu)``. On a CPU-only machine every tensor is
on the CPU, so such code passes every test. :class:`FakeCuda` brings the
failure to the CPU:

* inside ``with FakeCuda():`` (a :class:`~torch.overrides.TorchFunctionMode`)
  moving a tensor or a module to ``"cuda"`` (``.to("cuda")``, ``.cuda()``,
  ``device="cuda"`` in a factory function, ``module.to("cuda")``) keeps the
  data on the CPU but *tags* it as living on the fake device, whose tensors
  report ``.device == cuda:0``; results of an operation on a tagged tensor are
  tagged; ``.cpu()`` / ``.to("cpu")`` return an untagged copy;
* every torch function and tensor method is checked as CUDA would check it:
  an operation whose tensor arguments mix tagged tensors with untagged ones of
  one or more dimensions raises :class:`DeviceMixError` naming the operation
  (untagged 0-d tensors are allowed, as CUDA allows CPU scalars; a tagged
  tensor may be indexed with untagged indices, but not the other way round;
  ``copy_`` may copy across); ``.numpy()`` of a tagged tensor raises, as CUDA does;
* ``torch.cuda.synchronize`` does nothing;
* :attr:`FakeCuda.transfers` counts the device-to-host transfers
  (``.cpu()``, ``.item()``, ``float()``, ``int()``, ``bool()``, ``.tolist()``
  of a tagged tensor), each of which waits for the device on a real GPU.

So a method run end to end on models moved to the fake device fails on the CPU
exactly where it would fail on a GPU. What it cannot catch: code that asks
``torch.cuda.is_available()`` (False here) before choosing a path, and CUDA
kernels' own behaviour (numerics, memory) -- the tests in
``tests/test_device_following.py`` that need a real GPU skip without one.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_map

FAKE = torch.device("cuda", 0)
_CPU = torch.device("cpu")

#: Getters whose result on a tagged tensor is a Python value copied to the host (a device sync on a GPU).
_TRANSFERS = {
    torch.Tensor.item,
    torch.Tensor.tolist,
    torch.Tensor.__float__,
    torch.Tensor.__int__,
    torch.Tensor.__bool__,
    torch.Tensor.__index__,
}
_INDEXING = {torch.Tensor.__getitem__, torch.Tensor.__setitem__}
_CROSS_DEVICE_OK = {torch.Tensor.copy_}
_HOST_ONLY = {torch.Tensor.numpy, torch.Tensor.__array__}
#: Property getters arrive as fresh method-wrapper objects, equal (not identical) to these.
_DEVICE_GETTER = torch.Tensor.device.__get__
_IS_CUDA_GETTER = torch.Tensor.is_cuda.__get__


class DeviceMixError(RuntimeError):
    """An operation combined tensors that would sit on different devices on a GPU machine."""


class FakeCuda(TorchFunctionMode):
    """Run code as if the tagged tensors were on ``cuda:0`` (see the module docstring).

    Example::

        with FakeCuda() as fake:
            adapter = fake.move(toy2d_adapter("25gaussians"))
            batch = Chain(adapter, sampler=DRS(...)).sample(64)
            assert fake.on_device(batch.images)
    """

    def __init__(self) -> None:
        super().__init__()
        self._tags: dict[int, weakref.ref[torch.Tensor]] = {}
        self.transfers = 0
        self._patches: list[tuple[object, str, object]] = []

    # --- tags ---------------------------------------------------------------

    def on_device(self, tensor: torch.Tensor) -> bool:
        """True when ``tensor`` lives on the fake device."""
        ref = self._tags.get(id(tensor))
        return ref is not None and ref() is tensor

    def _tag(self, tensor: torch.Tensor) -> torch.Tensor:
        key = id(tensor)
        self._tags[key] = weakref.ref(tensor, lambda _, key=key: self._tags.pop(key, None))
        return tensor

    def _untag(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.on_device(tensor):
            del self._tags[id(tensor)]
        return tensor

    def move(self, obj: Any) -> Any:
        """Move an adapter (its generator, discriminator, classifier) or a module to the fake device."""
        modules = [obj] if isinstance(obj, torch.nn.Module) else [m for m in vars(obj).values() if isinstance(m, torch.nn.Module)]
        for module in modules:
            module.to(FAKE)
        return obj

    # --- the mode -----------------------------------------------------------

    def __enter__(self) -> FakeCuda:
        fake = self
        original_module_to = torch.nn.Module.to
        original_parameter_new = torch.nn.Parameter.__new__
        original_parameter_deepcopy = torch.nn.Parameter.__deepcopy__

        def module_to(module: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
            device, dtype, non_blocking, memory_format = torch._C._nn._parse_to(*args, **kwargs)
            if dtype is not None:
                original_module_to(module, dtype=dtype, non_blocking=non_blocking)
            if device is not None:
                mark = fake._tag if device.type == "cuda" else fake._untag
                module._apply(mark)  # what Module.to moves, including states kept outside buffers (torchmetrics)
                for tensor in _module_tensors(module):
                    mark(tensor)
            return module

        def parameter_new(cls: type, data: torch.Tensor | None = None, requires_grad: bool = True) -> torch.nn.Parameter:
            parameter = original_parameter_new(cls, data, requires_grad)
            return fake._tag(parameter) if data is not None and fake.on_device(data) else parameter

        def parameter_deepcopy(parameter: torch.nn.Parameter, memo: dict[int, Any]) -> torch.nn.Parameter:
            result = original_parameter_deepcopy(parameter, memo)
            return fake._tag(result) if fake.on_device(parameter) else result

        self._patch(torch.nn.Module, "to", module_to)
        self._patch(torch.nn.Parameter, "__new__", staticmethod(parameter_new))
        self._patch(torch.nn.Parameter, "__deepcopy__", parameter_deepcopy)
        self._patch(torch.cuda, "synchronize", lambda device=None: None)
        super().__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        for owner, name, value in reversed(self._patches):
            setattr(owner, name, value)
        self._patches.clear()

    def _patch(self, owner: object, name: str, value: object) -> None:
        self._patches.append((owner, name, owner.__dict__[name] if name in vars(owner) else getattr(owner, name)))
        setattr(owner, name, value)

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = dict(kwargs or {})
        if func == _DEVICE_GETTER:
            return FAKE if self.on_device(args[0]) else func(*args)
        if func == _IS_CUDA_GETTER:
            return self.on_device(args[0])
        if func in _HOST_ONLY and self.on_device(args[0]):
            raise DeviceMixError(f"{_name(func)} of a tensor on {FAKE}: move it to the CPU first (.cpu())")
        if func in _TRANSFERS and self.on_device(args[0]):
            self.transfers += 1
        if func is torch.Tensor.cpu:
            self.transfers += self.on_device(args[0])
            return args[0].clone() if self.on_device(args[0]) else func(*args, **kwargs)
        if func is torch.Tensor.cuda:
            return self._tag(args[0] if self.on_device(args[0]) else args[0].clone())
        if func is torch.Tensor.to:
            return self._to(args, kwargs)
        wants = kwargs.get("device")
        if wants is not None:
            kwargs["device"] = _CPU
        self._check(func, args, kwargs)
        result = func(*args, **kwargs)
        if (wants is not None and torch.device(wants).type == "cuda") or (wants is None and self._any_tagged(args, kwargs)):
            self._tag_all(result)
        return result

    def _to(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor:
        source, rest = args[0], args[1:]
        if rest and isinstance(rest[0], torch.Tensor):
            target_device = FAKE if self.on_device(rest[0]) else _CPU
            device, dtype, non_blocking, memory_format = target_device, rest[0].dtype, kwargs.get("non_blocking", False), None
        else:
            device, dtype, non_blocking, memory_format = torch._C._nn._parse_to(*rest, **kwargs)
        options: dict[str, Any] = {"non_blocking": non_blocking}
        if memory_format is not None:
            options["memory_format"] = memory_format
        result = torch.Tensor.to(source, dtype, **options) if dtype is not None else source
        here = self.on_device(source)
        if device is None or (device.type == "cuda") == here:
            return self._tag(result) if here and result is not source else result
        if here:
            self.transfers += 1
        copied = result.clone() if result is source else result
        return self._tag(copied) if device.type == "cuda" else self._untag(copied)

    def _check(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if func in _CROSS_DEVICE_OK:
            return
        if func in _INDEXING:
            target, index = args[0], args[1]
            indices = [t for t in tree_flatten(index)[0] if isinstance(t, torch.Tensor)]
            if not self.on_device(target) and any(self.on_device(t) for t in indices):
                raise DeviceMixError(
                    f"{_name(func)}: a CPU tensor {tuple(target.shape)} indexed with indices on {FAKE} "
                    "(CUDA: indices should be either on cpu or on the same device as the indexed tensor)"
                )
            if func is torch.Tensor.__setitem__ and isinstance(args[2], torch.Tensor) and args[2].dim() > 0:
                if self.on_device(args[2]) != self.on_device(target):
                    raise DeviceMixError(f"{_name(func)}: values on {self._where(args[2])} written into a tensor on {self._where(target)}")
            return
        tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        tagged = [t for t in tensors if self.on_device(t)]
        untagged = [t for t in tensors if not self.on_device(t) and t.dim() > 0]
        if tagged and untagged:
            raise DeviceMixError(
                f"{_name(func)} combines tensors on {FAKE} {[tuple(t.shape) for t in tagged]} with CPU tensors "
                f"{[tuple(t.shape) for t in untagged]} (CUDA: expected all tensors to be on the same device)"
            )

    def _where(self, tensor: torch.Tensor) -> torch.device:
        return FAKE if self.on_device(tensor) else _CPU

    def _any_tagged(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        return any(isinstance(t, torch.Tensor) and self.on_device(t) for t in tree_flatten((args, kwargs))[0])

    def _tag_all(self, result: Any) -> None:
        tree_map(lambda t: self._tag(t) if isinstance(t, torch.Tensor) else t, result)


def _module_tensors(module: torch.nn.Module) -> Iterator[torch.Tensor]:
    for tensor in [*module.parameters(), *module.buffers()]:
        yield tensor
        if tensor.grad is not None:
            yield tensor.grad


def _name(func: Any) -> str:
    return getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)

