"""Benchmarks, shipped as ``gan_postproc.benchmarks`` so ``gan-postproc bench NAME`` runs them for any user.

A benchmark is a module here that defines ``NAME`` (what ``gan-postproc bench``
calls it), ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> dict`` (the JSON-friendly result; the module prints its own
table, saying what it measured, on what, how many samples and seeds, and the
machine). Modules without ``NAME`` (training scripts, helpers) are not listed.
"""
