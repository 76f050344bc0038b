"""Shared fixtures for the test suite."""

from __future__ import annotations

import pytest
import torch

from gan_postproc import TorchAdapter
from gan_postproc.plugin_system.manager import PluginManager

from .helpers.tiny_models import TinyConditionalGenerator, TinyGenerator

torch.set_num_threads(1)


@pytest.fixture
def tiny_adapter() -> TorchAdapter:
    return TorchAdapter(TinyGenerator())


@pytest.fixture
def conditional_adapter() -> TorchAdapter:
    return TorchAdapter(TinyConditionalGenerator(), num_classes=3)


@pytest.fixture
def bare_pm() -> PluginManager:
    """A plugin manager with no plugins, for testing hooks in isolation."""
    return PluginManager()
