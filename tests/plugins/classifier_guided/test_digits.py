"""The classifier-in-the-loop samplers on the shipped digits models (gan_postproc.models.digits)."""

from __future__ import annotations

import torch

from gan_postproc import Chain
from gan_postproc.metrics import balance_kl
from gan_postproc.models.digits import digits_adapter, digits_classifier, digits_dataset, load_digits_feature_net
from gan_postproc.plugins.classifier_guided.class_balance import ClassBalanceSampler
from gan_postproc.plugins.classifier_guided.classifier_filter import ClassifierFilter
from gan_postproc.plugins.classifier_guided.proposals import classify
from gan_postproc.plugins.classifier_guided.real_sample_reweighting import reweight_real_samples


def test_class_balance_halves_the_balance_kl_of_the_shipped_unconditional_gan(bare_pm):
    adapter = digits_adapter(conditional=False, classifier=None)
    judge = load_digits_feature_net()  # independent of the guiding classifier
    plain = Chain(adapter, batch_size=500, plugin_manager=bare_pm).sample(2000, seed=0)
    chain = Chain(adapter, ClassBalanceSampler(digits_classifier(robust=False)), batch_size=500, plugin_manager=bare_pm)
    balanced = chain.sample(2000, seed=0)  # equal sample count
    with torch.no_grad():
        kl_plain = balance_kl(judge(plain.images).argmax(1), 10)
        kl_balanced = balance_kl(judge(balanced.images).argmax(1), 10)
    assert kl_plain > 0.02  # the shipped GAN is visibly imbalanced
    assert kl_balanced <= 0.5 * kl_plain


def test_classifier_filter_on_the_shipped_conditional_gan(bare_pm):
    classifier = digits_classifier(robust=False)
    chain = Chain(digits_adapter(conditional=True, classifier=None), ClassifierFilter(classifier), batch_size=500, plugin_manager=bare_pm)
    batch = chain.sample(1000, seed=0)
    p = classify(classifier, batch.images)
    assert bool((p.argmax(1) == batch.labels).all()) and bool((p[torch.arange(1000), batch.labels] >= 0.9).all())
    assert set(chain.sampler.stats.acceptance_rate_per_class()) == set(range(10))


def test_reweighting_real_digits_against_the_shipped_conditional_gan(bare_pm):
    real_images, real_labels = digits_dataset("train")
    fake = Chain(digits_adapter(conditional=True, classifier=None), batch_size=500, plugin_manager=bare_pm).sample(1000, seed=0)
    body = digits_classifier(robust=False).module.body
    with torch.no_grad():
        p = reweight_real_samples(body(real_images), real_labels, body(fake.images), fake.labels, "A_sigma")
    assert p.shape == (len(real_images),) and abs(float(p.sum()) - 1) < 1e-9
    assert 0 < int((p == 0).sum()) < len(p) // 2  # A_sigma drops the samples closest to what the GAN makes
