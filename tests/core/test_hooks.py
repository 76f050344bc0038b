"""Every hook: fired when documented, with the documented arguments; plugin mistakes fail loudly."""

from __future__ import annotations

import types

import pytest
import torch

from gan_postproc import Chain, LatentSampler, Refiner, SampleBatch, hookimpl
from gan_postproc.errors import HookError, PluginError
from gan_postproc.plugin_system.registry import Registry


class Recorder:
    """Records every run hook call with the names of its arguments."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def _log(self, hook: str, **kwargs) -> None:
        self.calls.append((hook, kwargs))

    @hookimpl
    def gan_postproc_run_start(self, chain, n, seed):
        self._log("run_start", chain=chain, n=n, seed=seed)

    @hookimpl
    def gan_postproc_before_sample(self, chain, request, batch_index):
        self._log("before_sample", n=len(request), batch_index=batch_index)

    @hookimpl
    def gan_postproc_after_sample(self, chain, sampler, batch, batch_index):
        self._log("after_sample", sampler=sampler.name, has_images=batch.images is not None, batch_index=batch_index)

    @hookimpl
    def gan_postproc_before_refine(self, chain, refiner, batch, batch_index):
        self._log("before_refine", refiner=refiner.name, batch_index=batch_index)

    @hookimpl
    def gan_postproc_after_refine(self, chain, refiner, before, after, batch_index):
        self._log("after_refine", changed=not torch.equal(before.images, after.images), batch_index=batch_index)

    @hookimpl
    def gan_postproc_batch_done(self, chain, batch, batch_index):
        self._log("batch_done", n=len(batch), batch_index=batch_index)

    @hookimpl
    def gan_postproc_run_end(self, chain, report):
        self._log("run_end", n=report.n)


class Halve(Refiner):
    name = "halve"

    def refine(self, batch, adapter):
        return batch.replace(images=batch.images / 2)


def test_run_hooks_fire_in_order_with_their_arguments(tiny_adapter, bare_pm):
    recorder = Recorder()
    bare_pm.register_plugin(recorder, "recorder")
    Chain(tiny_adapter, refiners=[Halve()], batch_size=3, plugin_manager=bare_pm).sample(5, seed=7)
    names = [name for name, _ in recorder.calls]
    per_batch = ["before_sample", "after_sample", "before_refine", "after_refine", "batch_done"]
    assert names == ["run_start", *per_batch, *per_batch, "run_end"]
    kwargs = dict(recorder.calls)
    assert kwargs["run_start"]["n"] == 5 and kwargs["run_start"]["seed"] == 7
    assert kwargs["after_sample"] == {"sampler": "prior", "has_images": True, "batch_index": 1}
    assert kwargs["after_refine"]["changed"]
    assert [c[1]["n"] for c in recorder.calls if c[0] == "batch_done"] == [3, 2]
    assert kwargs["run_end"] == {"n": 5}


def test_filter_batch_hook_vetoes_and_the_chain_redraws_to_exact_n(tiny_adapter, bare_pm):
    class KeepPositive:
        @hookimpl
        def gan_postproc_filter_batch(self, chain, batch, batch_index):
            return batch.images[:, 0] > 0

    bare_pm.register_plugin(KeepPositive(), "keep_positive")
    chain = Chain(tiny_adapter, batch_size=8, plugin_manager=bare_pm)
    batch = chain.sample(20, seed=1)
    assert len(batch) == 20 and batch.indices.tolist() == list(range(20))
    assert bool((batch.images[:, 0] > 0).all())
    assert chain.report.redrawn > 0


def test_filter_that_rejects_everything_stops_with_an_error(tiny_adapter, bare_pm):
    class RejectAll:
        @hookimpl
        def gan_postproc_filter_batch(self, batch):
            return torch.zeros(len(batch), dtype=torch.bool)

    bare_pm.register_plugin(RejectAll(), "reject_all")
    with pytest.raises(PluginError, match="rejected 4 samples of batch 0 in all 3 re-draws"):
        Chain(tiny_adapter, plugin_manager=bare_pm, filter_max_attempts=3).sample(4)


def test_filter_returning_a_bad_mask_is_named(tiny_adapter, bare_pm):
    class BadMask:
        @hookimpl
        def gan_postproc_filter_batch(self, batch):
            return torch.ones(len(batch))

    bare_pm.register_plugin(BadMask(), "bad_mask")
    with pytest.raises(PluginError, match=r"must return a \[4\] bool tensor"):
        Chain(tiny_adapter, plugin_manager=bare_pm).sample(4)


def test_a_hook_that_raises_is_named_with_the_batch_index(tiny_adapter, bare_pm):
    class Exploder:
        @hookimpl
        def gan_postproc_batch_done(self, batch_index):
            if batch_index == 1:
                raise ZeroDivisionError("oops")

    bare_pm.register_plugin(Exploder(), "exploder")
    with pytest.raises(HookError, match=r"plugin 'exploder' raised in gan_postproc_batch_done at batch 1: ZeroDivisionError"):
        Chain(tiny_adapter, batch_size=2, plugin_manager=bare_pm).sample(6)


def test_wrong_argument_name_names_the_plugin_and_the_hook(bare_pm):
    class Typo:
        @hookimpl
        def gan_postproc_batch_done(self, chain, batchh):
            pass

    with pytest.raises(PluginError, match=r"plugin 'typo'.*gan_postproc_batch_done.*batchh"):
        bare_pm.register_plugin(Typo(), "typo")


def test_misspelled_hook_fails_loudly(bare_pm):
    class Misspelled:
        @hookimpl
        def gan_postproc_register_sampler(self):
            return []

    bare_pm.register_plugin(Misspelled(), "misspelled")
    with pytest.raises(PluginError, match=r"plugin 'misspelled'.*gan_postproc_register_sampler.*Known hooks:.*gan_postproc_register_samplers"):
        bare_pm.check_pending()


def test_hook_function_without_the_decorator_is_refused(bare_pm):
    module = types.ModuleType("undecorated")
    module.gan_postproc_register_refiners = lambda: []
    with pytest.raises(PluginError, match="without @hookimpl"):
        bare_pm.register_plugin(module, "undecorated")


def test_same_plugin_name_twice_is_refused(bare_pm):
    bare_pm.register_plugin(types.ModuleType("a"), "same")
    with pytest.raises(PluginError, match="already registered"):
        bare_pm.register_plugin(types.ModuleType("b"), "same")


class NamedSampler(LatentSampler):
    name = "dup"

    def sample(self, adapter, request):
        raise AssertionError("never called")


def _registering(hook: str, result):
    plugin = types.ModuleType("registering")
    setattr(plugin, hook, hookimpl(lambda: result))
    return plugin


@pytest.mark.parametrize(
    "plugins, message",
    [
        ([("a", "gan_postproc_register_samplers", [NamedSampler]), ("b", "gan_postproc_register_samplers", [NamedSampler])],
         r"sampler name 'dup' is registered twice: by plugin 'a'.*and by plugin 'b'"),
        ([("a", "gan_postproc_register_refiners", [NamedSampler])], r"plugin 'a'.*expected a subclass of gan_postproc.Refiner"),
        ([("a", "gan_postproc_register_samplers", NamedSampler)], r"expected a list of classes"),
        ([("a", "gan_postproc_register_adapters", [type("NoName", (LatentSampler,), {"sample": None})])], r"subclass of gan_postproc.Adapter"),
        ([("a", "gan_postproc_register_samplers", [type("NoName", (LatentSampler,), {"sample": None})])], r"without a class attribute `name`"),
    ],
)
def test_bad_registrations_name_the_plugin(bare_pm, plugins, message):
    for name, hook, result in plugins:
        bare_pm.register_plugin(_registering(hook, result), name)
    with pytest.raises(PluginError, match=message):
        Registry(bare_pm)


def test_registration_hooks_collect_classes_with_provenance(bare_pm):
    class Refine(Refiner):
        name = "noop"

        def refine(self, batch, adapter):
            return batch

    bare_pm.register_plugin(_registering("gan_postproc_register_samplers", [NamedSampler]), "samplers_plugin")
    bare_pm.register_plugin(_registering("gan_postproc_register_refiners", [Refine]), "refiners_plugin")
    from gan_postproc import TorchAdapter

    class AdaptersPlugin:
        @hookimpl
        def gan_postproc_register_adapters(self):
            return [TorchAdapter]

    bare_pm.register_plugin(AdaptersPlugin(), "adapters_plugin")
    registry = Registry(bare_pm)
    assert registry.names("sampler") == ["dup"] and registry.names("refiner") == ["noop"]
    assert registry.names("adapter") == ["torch"]
    assert registry.infos(["refiner"])[0].plugin == "refiners_plugin"
    assert isinstance(registry.create("refiner", "noop"), Refine)
    with pytest.raises(Exception, match=r"no refiner named 'nope'; registered refiners: \['noop'\]"):
        registry.get("refiner", "nope")
    with pytest.raises(Exception, match="cannot create refiner 'noop': unknown option wrong. It takes no options"):
        registry.create("refiner", "noop", wrong=1)


def test_sample_batch_type_is_what_hooks_receive(tiny_adapter, bare_pm):
    seen = []

    class Types:
        @hookimpl
        def gan_postproc_batch_done(self, batch):
            seen.append(type(batch))

    bare_pm.register_plugin(Types(), "types")
    Chain(tiny_adapter, plugin_manager=bare_pm).sample(2)
    assert seen == [SampleBatch]


def _context(adapter):
    from gan_postproc.bench import BenchmarkContext

    return BenchmarkContext(suite="demo", dataset="tiny", adapter=adapter, conditional_adapter=None,
                            real_data=lambda n, seed: torch.zeros(n, 6), quick=True)


def test_benchmark_setups_are_collected_from_every_plugin(tiny_adapter, bare_pm):
    from gan_postproc.bench import BenchmarkSetup, collect_setups

    class Rows:
        def __init__(self, *names):
            self.names = names

        @hookimpl
        def gan_postproc_benchmark_setups(self, context):
            if context.suite != "demo":
                return None
            return [BenchmarkSetup(name, refiners=[Halve()]) for name in self.names]

    bare_pm.register_plugin(Rows("b_row", "a_row"), "rows")
    bare_pm.register_plugin(Rows(), "nothing")
    rows = collect_setups(_context(tiny_adapter), bare_pm)
    assert [row.name for row in rows] == ["a_row", "b_row"]
    bare_pm.register_plugin(Rows("a_row"), "clash")
    with pytest.raises(PluginError, match="'a_row' is contributed twice: by plugin 'rows' and by plugin 'clash'"):
        collect_setups(_context(tiny_adapter), bare_pm)


def test_benchmark_rows_of_the_wrong_type_name_the_plugin(tiny_adapter, bare_pm):
    from gan_postproc.bench import collect_setups

    bare_pm.register_plugin(_registering("gan_postproc_benchmark_setups", ["not a setup"]), "wrong_rows")
    with pytest.raises(PluginError, match="plugin 'wrong_rows'.*expected BenchmarkSetup rows, got str"):
        collect_setups(_context(tiny_adapter), bare_pm)
