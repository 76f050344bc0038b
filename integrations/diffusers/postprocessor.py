"""Refining what a diffusers pipeline returned: ``DiffusersPostprocessor`` and ``RefinedPipeline``.

:class:`DiffusersPostprocessor` applies image refiners (BIGRoC, ...) to what ``pipe(...)`` returned,
for every ``output_type`` (``"pil"``, ``"np"``, ``"pt"``), returning the same type and structure.
Wrapping a pipeline (:meth:`DiffusersPostprocessor.wrap`, a :class:`RefinedPipeline`) passes DiT's
``class_labels`` to the refiners as ground-truth labels.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from gan_postproc.defaults import DEFAULTS
from gan_postproc.errors import InputError, InputTypeError
from gan_postproc.pipeline.batch import SampleBatch
from gan_postproc.pipeline.chain import Chain
from gan_postproc.pipeline.ranges import CHAIN_RANGE, rescale
from gan_postproc.pipeline.refiner import Refiner
from gan_postproc.validation import ValueRange, check_in_range, check_tensor

from .adapter import require_diffusers
from .callback_pipeline import bound_arguments, innermost

__all__ = ["DiffusersPostprocessor", "RefinedPipeline"]

#: Pipeline classes whose ``output_type="pt"`` images are in [-1, 1] rather than [0, 1]
#: (they rescale only for "np" and "pil"): the Kandinsky family.
_MINUS_ONE_TO_ONE_PT_PREFIX = "Kandinsky"


def _pil_to_array(images: Sequence[Any]) -> np.ndarray:
    arrays = [np.asarray(image) for image in images]
    if len({a.shape for a in arrays}) != 1:
        raise InputError("the PIL images of one output must share one size and mode")
    stacked = np.stack(arrays)
    return stacked[..., None] if stacked.ndim == 3 else stacked  # mode "L" -> one channel


def _to_chain(images: Any, tensor_range: ValueRange) -> tuple[torch.Tensor, Callable[[torch.Tensor, torch.Tensor], Any]]:
    """Pipeline images -> chain images ``[N, C, H, W]`` in [-1, 1], and the map back to the same type.

    The map back takes ``(refined, chain_images)`` and keeps every value the
    refiners left unchanged bit-identical to the input (values outside the
    range, e.g. Kandinsky's unclamped tensors, included).
    """
    if isinstance(images, torch.Tensor):
        check_tensor(images, "images", ndim=4, floating=True)
        if tuple(tensor_range) == (0.0, 1.0):
            _check_unit_range(images.detach())
        source = images
        x = rescale(images.detach().float(), tensor_range, CHAIN_RANGE).clamp(*CHAIN_RANGE)

        def back(refined: torch.Tensor, chain_images: torch.Tensor) -> torch.Tensor:
            native = rescale(refined, CHAIN_RANGE, tensor_range).to(source.device, source.dtype)
            return torch.where((refined == chain_images).to(source.device), source, native)

        return x, back
    if isinstance(images, np.ndarray):
        if images.ndim != 4 or images.dtype.kind != "f":
            raise InputError(f"numpy images must be float NHWC in [0, 1] (output_type='np'), got {images.dtype} {images.shape}")
        _check_unit_range(torch.from_numpy(np.ascontiguousarray(images)))
        x = rescale(torch.from_numpy(np.ascontiguousarray(images)).float().permute(0, 3, 1, 2), (0.0, 1.0), CHAIN_RANGE)

        def back(refined: torch.Tensor, chain_images: torch.Tensor) -> np.ndarray:
            native = rescale(refined, CHAIN_RANGE, (0.0, 1.0)).permute(0, 2, 3, 1).numpy().astype(images.dtype)
            unchanged = (refined == chain_images).permute(0, 2, 3, 1).numpy()
            return np.where(unchanged, images, native)

        return x, back
    if isinstance(images, list) and images and all(hasattr(image, "mode") and hasattr(image, "size") for image in images):
        from PIL import Image

        modes = {image.mode for image in images}
        if len(modes) != 1 or not modes <= {"RGB", "L"}:
            raise InputError(f"PIL images must all be 'RGB' or all 'L', got modes {sorted(modes)}")
        (mode,) = modes
        array = _pil_to_array(images)
        x = rescale(torch.from_numpy(array).float().permute(0, 3, 1, 2), (0.0, 255.0), CHAIN_RANGE)

        def back(refined: torch.Tensor, chain_images: torch.Tensor) -> list[Any]:
            pixels = rescale(refined, CHAIN_RANGE, (0.0, 255.0)).round().clamp(0, 255).to(torch.uint8)
            unchanged = (refined == chain_images).permute(0, 2, 3, 1).numpy()
            pixels = np.where(unchanged, array, pixels.permute(0, 2, 3, 1).numpy())
            return [Image.fromarray(p[..., 0] if mode == "L" else p, mode=mode) for p in pixels]

        return x, back
    raise InputTypeError(
        f"cannot refine {type(images).__name__}: expected the images of output_type 'pil' (a list of PIL images), "
        "'np' (a float NHWC array) or 'pt' (an NCHW tensor); output_type='latent' gives latents, which belong to "
        "DiffusersCallback"
    )


def _check_unit_range(images: torch.Tensor) -> None:
    try:
        check_in_range(images, "images", (0.0, 1.0))
    except InputError as error:
        raise InputError(
            f"{error}. Pipeline images ('np', 'pt') lie in [0, 1]; values outside it are latents "
            "(output_type='latent', refine those with DiffusersCallback) or a pipeline whose 'pt' images are in "
            "[-1, 1] (pass tensor_range=(-1, 1))"
        ) from None


def _split_output(output: Any) -> tuple[Any, Callable[[Any], Any]]:
    """A pipeline result -> (its images, a function putting new images into a copy of the same structure)."""
    if dataclasses.is_dataclass(output) and hasattr(output, "images"):
        return output.images, lambda images: dataclasses.replace(output, images=images)
    if isinstance(output, tuple) and output:
        return output[0], lambda images: (images, *output[1:])
    return output, lambda images: images


class DiffusersPostprocessor:
    """Image refiners applied to the output of ``pipe(...)``.

    ``post(output)`` accepts what a pipeline returns (its output dataclass, the
    tuple of ``return_dict=False``, or the bare images) for ``output_type``
    ``"pil"``, ``"np"`` or ``"pt"``, and returns the same type and structure
    with refined images. Pixels the refiners do not change come back
    bit-identical (PIL images are re-quantised to uint8, so changed pixels are
    rounded).

    Args:
        refiners: image refiners (BIGRoC, ...), applied in order to images in
            [-1, 1] (the chain convention). They get no adapter.
        seed: keys the refiners' random numbers and their ``setup``.
        tensor_range: range of ``"pt"`` outputs: ``(0, 1)`` for most
            pipelines; :meth:`wrap` picks ``(-1, 1)`` for the Kandinsky family.

    Example::

        post = DiffusersPostprocessor([BIGRoC(classifier=robust, eps=0.5)])
        images = post(pipe(class_labels=[207, 360]), labels=[207, 360]).images
        pipe = post.wrap(pipe)          # or: refine every call, DiT labels passed through
    """

    def __init__(self, refiners: Sequence[Refiner], *, seed: int = DEFAULTS.seed, tensor_range: ValueRange = (0.0, 1.0)) -> None:
        refiners = list(refiners)
        if not refiners:
            raise InputError("DiffusersPostprocessor needs at least one refiner")
        self.chain = Chain(None, refiners=refiners)
        self.chain.setup(seed)
        self.seed = seed
        self.tensor_range = tuple(tensor_range)
        self.samples_seen = 0

    def __call__(
        self, output: Any, labels: Sequence[int] | torch.Tensor | None = None, *, tensor_range: ValueRange | None = None
    ) -> Any:
        """Refine the images of a pipeline result; same type and structure back.

        Args:
            output: what ``pipe(...)`` returned.
            labels: ground-truth class per image (``[N]``), e.g. DiT's
                ``class_labels``; refiners that use labels (BIGRoC_GT) get them.
            tensor_range: range of ``"pt"`` images for this call (default: the
                postprocessor's ``tensor_range``).
        """
        images, rebuild = _split_output(output)
        x, back = _to_chain(images, tuple(tensor_range) if tensor_range is not None else self.tensor_range)
        label_tensor = None
        if labels is not None:
            label_tensor = torch.as_tensor(labels, dtype=torch.int64).reshape(-1)
            if label_tensor.shape[0] != x.shape[0] or bool((label_tensor < 0).any()):
                raise InputError(f"labels must hold one non-negative class per image ({x.shape[0]}), got {label_tensor.tolist()}")
        indices = torch.arange(self.samples_seen, self.samples_seen + x.shape[0])
        self.samples_seen += x.shape[0]
        refined = self.chain.refine(SampleBatch(images=x, labels=label_tensor, indices=indices))
        return rebuild(back(refined.images.detach().cpu(), x))

    def wrap(self, pipeline: Any) -> RefinedPipeline:
        """A pipeline whose every call returns refined images (see :class:`RefinedPipeline`)."""
        return RefinedPipeline(pipeline, self)


class RefinedPipeline:
    """``pipeline(...)`` followed by a :class:`DiffusersPostprocessor`.

    Passes the call's ``class_labels`` (DiT) to the refiners as ground-truth
    labels, and reads ``output_type="pt"`` images in the range the pipeline
    uses ([-1, 1] for the Kandinsky family, else [0, 1]). Attributes of the
    pipeline are readable through the wrapper.
    """

    #: Passes its arguments to the wrapped pipeline (see :func:`~.callback_pipeline.call_signature`).
    wraps_pipeline = True

    def __init__(self, pipeline: Any, postprocessor: DiffusersPostprocessor) -> None:
        require_diffusers("RefinedPipeline")
        self.pipeline = pipeline
        self.postprocessor = postprocessor
        self.tensor_range = CHAIN_RANGE if type(innermost(pipeline)).__name__.startswith(_MINUS_ONE_TO_ONE_PT_PREFIX) else None

    def __getattr__(self, name: str) -> Any:
        if name in ("pipeline", "postprocessor", "tensor_range"):
            raise AttributeError(name)
        return getattr(self.pipeline, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the pipeline, then refine its images; same arguments and result type as the pipeline."""
        arguments = bound_arguments(self.pipeline, args, kwargs)
        if arguments.get("output_type") == "latent":
            raise InputError("output_type='latent' returns latents, not images; refine latents with DiffusersCallback")
        labels = arguments.get("class_labels")
        if isinstance(labels, int):
            labels = [labels]
        return self.postprocessor(self.pipeline(*args, **kwargs), labels=labels, tensor_range=self.tensor_range)
