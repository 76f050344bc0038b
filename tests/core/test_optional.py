"""Optional dependencies: one table, errors that name the install command."""

from __future__ import annotations

import pytest

from gan_postproc import optional
from gan_postproc.errors import OptionalDependencyError


def test_every_integration_dependency_is_in_the_table_with_its_install_command():
    assert optional.OPTIONAL_PACKAGES["diffusers"].install == "pip install 'gan-postproc[diffusers]'"
    assert optional.OPTIONAL_PACKAGES["pytorch_pretrained_biggan"].install == "pip install 'gan-postproc[biggan]'"
    assert optional.OPTIONAL_PACKAGES["torch_mimicry"].install == "pip install --no-deps torch-mimicry"


def test_a_missing_package_names_the_extra_to_install(monkeypatch):
    monkeypatch.setattr(optional.importlib.util, "find_spec", lambda name: None)
    assert not optional.is_available("diffusers")
    with pytest.raises(OptionalDependencyError, match=r"the diffusers callback needs the package 'diffusers'.*pip install 'gan-postproc\[diffusers\]'"):
        optional.require("diffusers.callbacks", "the diffusers callback")
    with pytest.raises(OptionalDependencyError, match=r"pip install --no-deps torch-mimicry"):
        optional.require_installed("torch_mimicry", "loading torch-mimicry nets")


def test_an_unknown_package_is_a_programming_error():
    with pytest.raises(KeyError, match="OPTIONAL_PACKAGES"):
        optional.is_available("tensorflow")
