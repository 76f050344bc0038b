"""diffusers pipelines: an adapter, a step callback that refines inside the denoising loop, a pipeline
that calls it, and a post-processor for any pipeline's output."""

from .adapter import CallbackPipeline, DiffusersAdapter, DiffusersCallback, DiffusersPostprocessor, RefinedPipeline, decode_latents

__all__ = ["DiffusersAdapter", "DiffusersCallback", "CallbackPipeline", "DiffusersPostprocessor", "RefinedPipeline", "decode_latents"]
