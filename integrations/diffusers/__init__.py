"""The ``diffusers`` integration: gan-postproc inside and after Hugging Face diffusers pipelines.

Three ways in, one adapter underneath:

* :class:`DiffusersCallback`, passed as ``callback_on_step_end=`` to any
  pipeline that has that argument (Stable Diffusion, SDXL, SD3, Kandinsky,
  Flux, ...). At the steps you choose (by default the last) it runs a latent
  sampler and latent-space refiners on the pipeline's ``latents``, with
  gradients enabled inside the pipeline's ``torch.no_grad()`` loop, on a
  detached clone. It reads and writes ``latents`` only through the
  ``callback_kwargs`` the pipeline hands it (its declared ``tensor_inputs``),
  returns that dict, and composes with diffusers' ``MultiPipelineCallbacks``.
* :class:`CallbackPipeline` runs the same callback on pipelines *without*
  ``callback_on_step_end`` (DDPM, DDIM, DiT, PNDM, ...) by wrapping the
  scheduler's ``step`` for the duration of a call, and passes it natively
  where the pipeline has the argument: one callback serves every pipeline.
* :class:`DiffusersPostprocessor` applies image refiners (BIGRoC, ...) to what
  ``pipe(...)`` returned, for every ``output_type`` (``"pil"``, ``"np"``,
  ``"pt"``), returning the same type and structure. Wrapping a pipeline
  (:meth:`DiffusersPostprocessor.wrap`) passes DiT's ``class_labels`` to the
  refiners as ground-truth labels.

The adapter :class:`DiffusersAdapter` (registered as ``"diffusers"``) is the
pipeline's decoder seen as a generator: latents ``[N, C, h, w]`` -> images
``[N, 3, H, W]`` in [-1, 1] (the VAE / VQ decoder, or the identity for
pixel-space pipelines). Inside the callback it decodes the latents of the
current step; at the last step that is exactly what the pipeline outputs, at
earlier steps it is the decode of a still-noisy latent.

One job per module: ``adapter`` (:class:`DiffusersAdapter`, :func:`decode_latents`), ``callback``
(:class:`DiffusersCallback`), ``callback_pipeline`` (:class:`CallbackPipeline`), ``postprocessor``
(:class:`DiffusersPostprocessor`, :class:`RefinedPipeline`). diffusers is imported only when one of these is used; without it they raise
an error naming ``pip install 'gan-postproc[diffusers]'``.
"""

from .adapter import DiffusersAdapter, decode_latents
from .callback import DiffusersCallback
from .callback_pipeline import CallbackPipeline
from .postprocessor import DiffusersPostprocessor, RefinedPipeline

__all__ = ["DiffusersAdapter", "DiffusersCallback", "CallbackPipeline", "DiffusersPostprocessor", "RefinedPipeline", "decode_latents"]
