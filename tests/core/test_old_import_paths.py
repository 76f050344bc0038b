"""Every public name a user imported in 0.1 still imports (until 0.3) and is the very object of its new home.

The list is the old public API as the README of 0.1 stated it: every ``from gan_postproc... import ...``
of its examples, the names of "API at a glance", and the module paths its text names. Old module
paths are served by one mechanism, ``gan_postproc._moved`` (the table is the entry-point group
``gan_postproc.moved`` of pyproject.toml); importing one warns once, naming the new home.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings

import pytest

import gan_postproc
from gan_postproc import _moved

#: (old module, name, new module): the README of 0.1's imports and the names its text points to.
OLD_API = [
    *[("gan_postproc", name, "gan_postproc") for name in (
        "hookimpl", "get_plugin_manager", "get_registry", "Adapter", "TorchAdapter", "LatentPrior", "Discriminator",
        "Classifier", "ScoreKind", "LatentSampler", "RejectionSampler", "PriorSampler", "Refiner", "SampleBatch",
        "SampleRequest", "Chain", "RunReport", "dropin", "DropIn", "DEFAULTS", "reset_plugin_manager", "GanPostprocError",
    )],
    ("gan_postproc.calibration", "calibrate_discriminator", "gan_postproc.plugins.density_ratio"),
    ("gan_postproc.calibration", "load_calibrated_discriminator", "gan_postproc.plugins.density_ratio"),
    ("gan_postproc.integrations.biggan", "BigGANAdapter", "gan_postproc.integrations.biggan"),
    ("gan_postproc.integrations.biggan", "load_biggan", "gan_postproc.integrations.biggan"),
    ("gan_postproc.integrations.diffusers_pipeline", "CallbackPipeline", "gan_postproc.integrations.diffusers"),
    ("gan_postproc.integrations.diffusers_pipeline", "DiffusersCallback", "gan_postproc.integrations.diffusers"),
    ("gan_postproc.integrations.diffusers_pipeline", "DiffusersPostprocessor", "gan_postproc.integrations.diffusers"),
    ("gan_postproc.integrations.diffusers_pipeline", "DiffusersAdapter", "gan_postproc.integrations.diffusers"),
    ("gan_postproc.integrations.diffusers_pipeline", "RefinedPipeline", "gan_postproc.integrations.diffusers"),
    ("gan_postproc.integrations.mimicry", "MimicryAdapter", "gan_postproc.integrations.mimicry"),
    ("gan_postproc.integrations.mimicry", "import_mimicry", "gan_postproc.integrations.mimicry"),
    ("gan_postproc.integrations.mimicry", "load_mimicry_checkpoint", "gan_postproc.integrations.mimicry"),
    ("gan_postproc.integrations.studiogan", "patch", "gan_postproc.integrations.studiogan"),
    ("gan_postproc.integrations.stylegan2", "StyleGAN2Adapter", "gan_postproc.integrations.stylegan2.nvlabs"),
    ("gan_postproc.integrations.stylegan2", "load_nvlabs_pickle", "gan_postproc.integrations.stylegan2.nvlabs"),
    ("gan_postproc.integrations.stylegan2", "RosinalityStyleGAN2Adapter", "gan_postproc.integrations.stylegan2.rosinality"),
    ("gan_postproc.integrations.stylegan2", "load_rosinality_checkpoint", "gan_postproc.integrations.stylegan2.rosinality"),
    ("gan_postproc.integrations.torch_module", "TorchAdapter", "gan_postproc"),
    ("gan_postproc.metrics", "ModuleFeatures", "gan_postproc.metrics"),
    ("gan_postproc.metrics", "SampleEvaluator", "gan_postproc.metrics"),
    ("gan_postproc.metrics", "balance_kl", "gan_postproc.metrics"),
    ("gan_postproc.metrics", "emd", "gan_postproc.metrics"),
    *[("gan_postproc.models.digits", name, "gan_postproc.models.digits") for name in (
        "DigitsClassifier", "digits_adapter", "digits_classifier", "digits_dataset", "load_digits_classifier",
        "load_digits_feature_net", "load_digits_generator",
    )],
    ("gan_postproc.models.toy2d", "sample_toy2d_real", "gan_postproc.models.toy2d"),
    ("gan_postproc.models.toy2d", "toy2d_adapter", "gan_postproc.models.toy2d"),
    ("gan_postproc.plugins.bigroc", "BIGRoC", "gan_postproc.plugins.bigroc.refiner"),
    ("gan_postproc.plugins.class_balance", "ClassBalanceSampler", "gan_postproc.plugins.classifier_guided"),
    ("gan_postproc.plugins.classifier_filter", "ClassifierFilter", "gan_postproc.plugins.classifier_guided"),
    ("gan_postproc.plugins.collaborative", "CollaborativeRefiner", "gan_postproc.plugins.collaborative.refiner"),
    ("gan_postproc.plugins.collaborative", "load_shaped_discriminator", "gan_postproc.plugins.collaborative.shaped_files"),
    ("gan_postproc.plugins.collaborative", "shape_discriminator", "gan_postproc.plugins.collaborative.shaping"),
    ("gan_postproc.plugins.collaborative", "shipped_shaped_digits_discriminator", "gan_postproc.plugins.collaborative.shaped_files"),
    ("gan_postproc.plugins.ddls", "DDLS", "gan_postproc.plugins.ddls"),
    ("gan_postproc.plugins.dot", "DOT", "gan_postproc.plugins.dot"),
    ("gan_postproc.plugins.drs", "DiscriminatorRejectionSampler", "gan_postproc.plugins.density_ratio"),
    ("gan_postproc.plugins.ensemble", "Ensemble", "gan_postproc.plugins.classifier_guided"),
    ("gan_postproc.plugins.latent_rs", "LatentRS", "gan_postproc.plugins.latent_reweighting"),
    ("gan_postproc.plugins.latent_rs", "train_importance_network", "gan_postproc.plugins.latent_reweighting"),
    ("gan_postproc.plugins.latent_rs_ga", "LatentRSGA", "gan_postproc.plugins.latent_reweighting"),
    ("gan_postproc.plugins.mh", "MetropolisHastingsSampler", "gan_postproc.plugins.density_ratio"),
    ("gan_postproc.plugins.sir", "SamplingImportanceResampling", "gan_postproc.plugins.density_ratio"),
    ("gan_postproc.plugins.truncation", "TruncationSampler", "gan_postproc.plugins.truncation"),
    ("gan_postproc.reweighting", "reweight_real_samples", "gan_postproc.plugins.classifier_guided"),
    ("gan_postproc.synthetic", "SyntheticDataset", "gan_postproc.runs.synthetic"),
    ("gan_postproc.sample_run", "sample_to_disk", "gan_postproc.runs.sample_run"),
    ("gan_postproc.sample_run", "iter_shards", "gan_postproc.runs.sample_run"),
    ("gan_postproc.training", "train_robust_classifier", "gan_postproc.plugins.bigroc"),
    ("gan_postproc.training.robust_classifier", "train_robust_classifier", "gan_postproc.plugins.bigroc"),
    ("gan_postproc.training", "train_classifier", "gan_postproc.classifier_training"),
    ("gan_postproc.training", "AttackSettings", "gan_postproc.plugins.bigroc"),
    ("gan_postproc.training", "pgd_l2", "gan_postproc.plugins.bigroc"),
    ("gan_postproc.training", "save_checkpoint", "gan_postproc.files.checkpoints"),
    ("gan_postproc.classifier_files", "ARCHITECTURES", "gan_postproc.files.classifiers"),
    ("gan_postproc.classifier_files", "save_classifier", "gan_postproc.files.classifiers"),
    ("gan_postproc.classifier_files", "load_classifier", "gan_postproc.files.classifiers"),
    ("gan_postproc.adapter", "Adapter", "gan_postproc"),
    ("gan_postproc.errors", "GanPostprocError", "gan_postproc"),
    ("gan_postproc.manager", "PluginLoadWarning", "gan_postproc.plugin_system.manager"),
    ("gan_postproc.registry", "get_registry", "gan_postproc"),
    ("gan_postproc.density_ratio", "DensityRatio", "gan_postproc.plugins.density_ratio"),
    ("gan_postproc.density_ratio", "real_samples", "gan_postproc.plugins.density_ratio.real_samples"),
    ("gan_postproc.validation", "check_batch", "gan_postproc.pipeline.batch"),
    ("gan_postproc.scoring", "as_discriminator", "gan_postproc.pipeline.scoring"),
    ("gan_postproc.io", "atomic_write", "gan_postproc.files.writing"),
    ("gan_postproc.loading", "read_safetensors", "gan_postproc.files.loading"),
    ("gan_postproc.image_files", "read_images", "gan_postproc.files.images"),
    ("gan_postproc.rng", "normal", "gan_postproc.rng"),
]


def _fresh_import(module: str) -> tuple[object, list[warnings.WarningMessage]]:
    """Import ``module`` as a first import would (forgetting an earlier one), recording warnings."""
    for name in [name for name in sys.modules if name == module or name.startswith(module + ".")]:
        if isinstance(sys.modules[name], type(sys)) and name in _moved.moves().modules | _moved.moves().names:
            del sys.modules[name]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        imported = importlib.import_module(module)
    return imported, caught


@pytest.mark.parametrize(("old", "name", "new"), OLD_API, ids=[f"{o}.{n}" for o, n, _ in OLD_API])
def test_every_old_public_name_imports_and_is_the_new_object(old, name, new):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        found = getattr(importlib.import_module(old), name)
    assert found is getattr(importlib.import_module(new), name)


MOVED_MODULES = sorted({old for old, _, _ in OLD_API if _moved.moves().knows(old) and old != "gan_postproc.validation"})


def test_the_moved_modules_of_the_readme_are_served_by_the_table():
    assert {"gan_postproc.calibration", "gan_postproc.plugins.drs", "gan_postproc.training", "gan_postproc.reweighting",
            "gan_postproc.integrations.diffusers_pipeline", "gan_postproc.synthetic", "gan_postproc.sample_run"} <= set(MOVED_MODULES)


@pytest.mark.parametrize("old", MOVED_MODULES)
def test_importing_an_old_path_warns_once_naming_the_new_home(old):
    module, caught = _fresh_import(old)
    messages = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
    assert len(messages) == 1 and messages[0].startswith(f"{old} moved to ") and "removed in gan-postproc 0.3" in messages[0]
    assert _moved.moves().new_homes(old) in messages[0]
    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        assert importlib.import_module(old) is module
    assert not again


def test_paths_that_did_not_move_do_not_warn():
    code = (
        "import warnings; warnings.simplefilter('error', DeprecationWarning)\n"
        "from gan_postproc.plugins.collaborative import CollaborativeRefiner, shape_discriminator\n"
        "from gan_postproc.plugins.bigroc import BIGRoC\n"
        "from gan_postproc.integrations.stylegan2 import StyleGAN2Adapter\n"
        "from gan_postproc import Chain, TorchAdapter, DEFAULTS\n"
        "DEFAULTS.seed\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_a_name_moved_out_of_a_module_that_stays_warns_on_first_use():
    import gan_postproc.validation as validation
    from gan_postproc.pipeline import batch

    validation.__dict__.pop("KEEP", None)
    with pytest.warns(DeprecationWarning, match=r"gan_postproc.validation.KEEP moved to gan_postproc.pipeline.batch.KEEP"):
        assert validation.KEEP is batch.KEEP
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        validation.no_such_name


def test_method_fields_of_the_core_defaults_still_read_with_a_warning():
    from gan_postproc.plugins.bigroc import DEFAULTS as BIGROC
    from gan_postproc.plugins.density_ratio import DEFAULTS as DENSITY_RATIO
    from gan_postproc.plugins.dot import DEFAULTS as DOT

    with pytest.warns(DeprecationWarning, match=r"DEFAULTS.drs_burn_in moved to gan_postproc.plugins.density_ratio.defaults"):
        assert gan_postproc.DEFAULTS.drs_burn_in == DENSITY_RATIO.drs_burn_in == 10_000
    with pytest.warns(DeprecationWarning, match=r"DEFAULTS.bigroc_steps moved"):
        assert gan_postproc.DEFAULTS.bigroc_steps == BIGROC.bigroc_steps == 7
    with pytest.warns(DeprecationWarning):
        assert gan_postproc.DEFAULTS.dot_betas == DOT.dot_betas
    with pytest.raises(AttributeError, match="no field 'no_such_field'"):
        gan_postproc.DEFAULTS.no_such_field


def test_the_core_defaults_name_no_method():
    fields = set(type(gan_postproc.DEFAULTS).__dataclass_fields__)
    method_prefixes = ("bigroc_", "drs_", "mh_", "sir_", "isotonic_", "calibration_", "density_ratio_", "truncation_",
                       "collaborative_", "shaping_", "dot_", "ddls_", "classifier_filter_", "class_balance_", "ensemble_",
                       "importance_", "latent_", "robust_", "stylegan_")
    assert fields and not [field for field in fields if field.startswith(method_prefixes)]
    assert len(fields) == 20


def test_the_finder_leaves_unknown_modules_alone():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("gan_postproc.no_such_module")
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("gan_postproc.plugins.no_such_plugin")


def test_the_table_points_at_modules_and_names_that_exist():
    table = _moved.moves()
    for old, new in table.modules.items():
        importlib.import_module(new)
    for old, names in table.names.items():
        for name, (new_module, new_name) in names.items():
            target = importlib.import_module(new_module)
            for part in new_name.split("."):
                target = getattr(target, part)
    assert len(table.modules) > 20 and len(table.names) >= 3
