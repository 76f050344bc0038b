"""BIGRoC with the shipped digits models: an already-perfect (real) image changes little."""

from __future__ import annotations

import torch

from gan_postproc import Classifier, SampleBatch
from gan_postproc.metrics import fid
from gan_postproc.models.digits import digits_classifier, digits_dataset, digits_feature_extractor, load_digits_feature_net
from gan_postproc.plugins.bigroc import BIGRoC

torch.set_num_threads(1)


def test_real_digits_stay_real_and_keep_their_class():
    robust = digits_classifier(robust=True)
    features = digits_feature_extractor()
    judge = Classifier(load_digits_feature_net(), 10)  # independent of the guiding classifier
    train, _ = digits_dataset("train")
    test, labels = digits_dataset("test")
    refined = BIGRoC(robust, eps=0.5).refine(SampleBatch(images=test, labels=labels), None).images
    change = (refined - test).flatten(1).norm(dim=1) / test.flatten(1).norm(dim=1)
    assert float(change.max()) < 0.15  # at most eps 0.5 against images of L2 norm about 6.8
    # the set stays as close to real data as held-out real data is, far from what the GAN makes (FID ~12)
    assert fid(train, refined, features=features) < 2.5 * max(fid(train, test, features=features), 1.0)
    with torch.no_grad():
        before = (judge(test).argmax(1) == labels).float().mean()
        after = (judge(refined).argmax(1) == labels).float().mean()
    assert float(after) >= float(before) - 0.005
