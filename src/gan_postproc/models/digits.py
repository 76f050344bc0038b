"""Small real models trained on scikit-learn's 8x8 digits, shipped inside the package.

``sklearn.datasets.load_digits`` (1797 grayscale 8x8 images, 10 classes,
pixel values 0..16) ships with scikit-learn, so everything here runs offline.
``benchmarks/train_digits.py`` trains, with fixed seeds on CPU in a few
minutes, the models whose weights ship in ``gan_postproc/assets/digits/``
(``manifest.json`` there records how each was made, its measured quality
and its SHA-256):

* an unconditional GAN (:class:`DigitsGenerator` + :class:`DigitsDiscriminator`,
  non-saturating loss, so the discriminator's output is a logit of
  ``p(real | x)``), stopped early on purpose: its samples are recognisable
  but flawed, leaving room for post-processing;
* a class-conditional GAN (the same generator with class-conditional batch
  normalisation, and a projection discriminator, Miyato & Koyama 2018), also
  stopped early: about 1 in 10 samples is not recognised as its requested class;
* :class:`DigitsClassifier` twice: trained normally, and adversarially
  against L2 PGD (a *robust* classifier, as BIGRoC needs);
* :class:`DigitsFeatureNet`, an independent network (other architecture,
  other seed, trained separately) whose penultimate layer ``features`` is used
  to *measure* samples (FID, precision/recall). Never use it to guide a
  method: a metric computed with the guiding network rewards fooling it.

Images are float32 ``[N, 1, 8, 8]`` in ``[-1, 1]`` (pixel ``p`` in 0..16 maps
to ``p / 8 - 1``), the chain convention, so no model needs a range conversion.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, InputError
from ..pipeline.priors import LatentPrior
from ..pipeline.scoring import Classifier, Discriminator, ScoreKind
from ..pipeline.torch_adapter import TorchAdapter
from ..validation import check_labels
from .assets import load_shipped_state, load_state_dict_strict, load_weights, read_manifest

__all__ = [
    "DIGITS_NUM_CLASSES",
    "DIGITS_IMAGE_SHAPE",
    "DIGITS_TEST_SIZE",
    "DIGITS_SPLIT_SEED",
    "DIGITS_FILES",
    "digits_dataset",
    "DigitsGenerator",
    "DigitsDiscriminator",
    "DigitsClassifier",
    "DigitsFeatureNet",
    "DigitsFeatureExtractor",
    "load_digits_generator",
    "load_digits_discriminator",
    "load_digits_classifier",
    "load_digits_feature_net",
    "digits_feature_extractor",
    "digits_classifier",
    "digits_adapter",
]

#: Number of digit classes.
DIGITS_NUM_CLASSES = 10
#: Shape of one image, ``(C, H, W)``.
DIGITS_IMAGE_SHAPE = (1, 8, 8)
#: Fraction of the 1797 images held out as the test split (450 images; 1347 train).
DIGITS_TEST_SIZE = 0.25
#: ``random_state`` of the stratified split; fixed, so every model and metric sees the same split.
DIGITS_SPLIT_SEED = 0
#: Largest pixel value of ``load_digits`` (pixels are integers 0..16).
_PIXEL_MAX = 16.0

#: Shipped weight files, by the model they hold.
DIGITS_FILES: dict[str, str] = {
    "generator": "generator.safetensors",
    "cond_generator": "cond_generator.safetensors",
    "discriminator": "discriminator.safetensors",
    "cond_discriminator": "cond_discriminator.safetensors",
    "classifier": "classifier.safetensors",
    "robust_classifier": "robust_classifier.safetensors",
    "feature_net": "feature_net.safetensors",
}

Split = Literal["train", "test", "all"]


@lru_cache(maxsize=1)
def _split_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # here, not at the top: scikit-learn is slow to import
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = (bunch.images.astype(np.float32) / (_PIXEL_MAX / 2) - 1.0)[:, None, :, :]
    labels = bunch.target.astype(np.int64)
    train_x, test_x, train_y, test_y = train_test_split(
        images, labels, test_size=DIGITS_TEST_SIZE, stratify=labels, random_state=DIGITS_SPLIT_SEED
    )
    return train_x, train_y, test_x, test_y, images, labels


def digits_dataset(split: Split = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """The digits images and labels of a fixed split.

    The split is ``sklearn.model_selection.train_test_split(test_size=0.25,
    stratify=labels, random_state=0)`` of ``load_digits()``: 1347 training and
    450 test images, class proportions kept. Every shipped model was trained on
    ``"train"`` only.

    Args:
        split: ``"train"``, ``"test"`` or ``"all"`` (the 1797 images in
            ``load_digits`` order).

    Returns:
        ``(images, labels)``: ``[N, 1, 8, 8]`` float32 in ``[-1, 1]`` and
        ``[N]`` int64 in ``[0, 9]``, fresh tensors on the CPU.
    """
    train_x, train_y, test_x, test_y, all_x, all_y = _split_arrays()
    arrays = {"train": (train_x, train_y), "test": (test_x, test_y), "all": (all_x, all_y)}
    if split not in arrays:
        raise InputError(f"split must be one of {list(arrays)}, got {split!r}")
    x, y = arrays[split]
    return torch.from_numpy(x.copy()), torch.from_numpy(y.copy())


# --- architectures -------------------------------------------------------------


class ConditionalBatchNorm2d(nn.Module):
    """Batch normalisation whose gain and shift are learned per class (de Vries et al. 2017; as in SNGAN-projection).

    Unconditional (``num_classes=None``): a plain ``BatchNorm2d`` with its own affine parameters.
    Conditional: ``BatchNorm2d`` without affine, then ``gain[y] * h + shift[y]``
    (embeddings initialised to 1 and 0).
    """

    def __init__(self, channels: int, num_classes: int | None = None) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=num_classes is None)
        self.gain = self.shift = None
        if num_classes is not None:
            self.gain, self.shift = nn.Embedding(num_classes, channels), nn.Embedding(num_classes, channels)
            nn.init.ones_(self.gain.weight)
            nn.init.zeros_(self.shift.weight)

    def forward(self, h: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm(h)
        if self.gain is None:
            return h
        return h * self.gain(y)[:, :, None, None] + self.shift(y)[:, :, None, None]


class _Projection(nn.Module):
    """``z [N, nz]`` -> linear -> ``[N, C, 2, 2]`` -> (conditional) batch norm -> ReLU."""

    def __init__(self, nz: int, channels: int, num_classes: int | None) -> None:
        super().__init__()
        self.channels = channels
        self.linear = nn.Linear(nz, channels * 2 * 2)
        self.norm = ConditionalBatchNorm2d(channels, num_classes)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return torch.relu(self.norm(self.linear(z).view(-1, self.channels, 2, 2), y))


class _UpBlock(nn.Module):
    """Nearest-neighbour upsampling x2 -> conv 3x3 -> (conditional) batch norm -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, num_classes: int | None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm = ConditionalBatchNorm2d(out_channels, num_classes)

    def forward(self, h: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return torch.relu(self.norm(self.conv(F.interpolate(h, scale_factor=2, mode="nearest")), y))


class DigitsGenerator(nn.Module):
    """DCGAN-style generator for 8x8 digits, unconditional or class-conditional.

    ``z [N, nz] (~ N(0, I)) -> fc -> [N, 4w, 2, 2] -> block1 -> [N, 2w, 4, 4]
    -> block2 -> [N, w, 8, 8] -> to_image -> [N, 1, 8, 8]`` in ``[-1, 1]``
    (tanh). ``fc`` is a linear layer reshaped to 2x2 maps; each block is
    nearest-neighbour upsampling and a 3x3 convolution; all three end with
    batch normalisation and ReLU. The named layers ``fc``, ``block1``,
    ``block2``, ``to_image`` are where layer-wise methods split the generator.
    A conditional generator takes the class through class-conditional batch
    normalisation in ``fc``, ``block1`` and ``block2`` (the latent alone enters ``fc``).

    Args:
        nz: latent size.
        num_classes: classes of a conditional generator, ``None`` for an unconditional one.
        width: channels ``w`` of the last block.
    """

    def __init__(self, nz: int = 32, num_classes: int | None = None, width: int = 32) -> None:
        super().__init__()
        self.nz, self.num_classes, self.width = nz, num_classes, width
        self.fc = _Projection(nz, 4 * width, num_classes)
        self.block1 = _UpBlock(4 * width, 2 * width, num_classes)
        self.block2 = _UpBlock(2 * width, width, num_classes)
        self.to_image = nn.Sequential(nn.Conv2d(width, 1, 3, padding=1), nn.Tanh())

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """``[N, nz]`` latents (and ``[N]`` int64 labels if conditional) -> ``[N, 1, 8, 8]`` in ``[-1, 1]``."""
        _check_conditioning(y, self.num_classes, "generator")
        return self.to_image(self.block2(self.block1(self.fc(z, y), y), y))


def _check_conditioning(y: torch.Tensor | None, num_classes: int | None, what: str) -> None:
    if num_classes is None and y is not None:
        raise InputError(f"this {what} is unconditional; call it without labels")
    if num_classes is not None and y is None:
        raise InputError(f"this {what} is conditional ({num_classes} classes); pass labels y of shape [N]")
    if num_classes is not None:
        check_labels(y, "y", num_classes=num_classes)


class DigitsDiscriminator(nn.Module):
    """Convolutional discriminator for 8x8 digits; returns a logit of ``p(real | x)`` per sample.

    ``x [N, 1, 8, 8] -> features (conv 3x3 -> conv 4x4/2 -> conv 4x4/2,
    LeakyReLU 0.2) -> h [N, 16w] -> head -> [N]``. Trained with the
    non-saturating GAN loss (binary cross-entropy), so the output estimates
    ``log p_data(x) / p_model(x)``. The conditional version is a projection
    discriminator (Miyato & Koyama 2018, Eq. 3): ``head(h) + <embed(y), h>``.

    Args:
        num_classes: classes of a conditional discriminator, ``None`` otherwise.
        width: channels ``w`` of the first convolution.
    """

    def __init__(self, num_classes: int | None = None, width: int = 32) -> None:
        super().__init__()
        self.num_classes, self.width = num_classes, width
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 4 * width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
        )
        self.head = nn.Linear(16 * width, 1)
        self.embed = None
        if num_classes is not None:
            # Xavier-uniform, as in the projection discriminator's reference code: torch's default
            # unit-normal embedding would make the class term ~40x larger than head(h) at the start.
            self.embed = nn.Embedding(num_classes, 16 * width)
            nn.init.xavier_uniform_(self.embed.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """``[N, 1, 8, 8]`` images in ``[-1, 1]`` (and ``[N]`` labels if conditional) -> ``[N]`` logits."""
        _check_conditioning(y, self.num_classes, "discriminator")
        h = self.features(x)
        out = self.head(h)[:, 0]
        if self.embed is None:
            return out
        return out + (self.embed(y) * h).sum(dim=1)


class DigitsClassifier(nn.Module):
    """Small CNN classifier: ``[N, 1, 8, 8]`` in ``[-1, 1]`` -> ``[N, 10]`` logits.

    ``body``: conv 3x3 (w) -> conv 3x3/2 (2w) -> conv 3x3/2 (4w), ReLU, flatten;
    ``head``: linear to the classes. The shipped normal and robust
    classifiers share this architecture, so they can be compared directly.
    """

    def __init__(self, width: int = 32, num_classes: int = DIGITS_NUM_CLASSES) -> None:
        super().__init__()
        self.width, self.num_classes = width, num_classes
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(2 * width, 4 * width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        self.head = nn.Linear(16 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class DigitsFeatureNet(nn.Module):
    """The independent measuring network: another architecture than :class:`DigitsClassifier`.

    ``conv`` (conv 5x5 (16) -> ELU -> max-pool 2 -> conv 3x3 (32) -> ELU ->
    max-pool 2 -> flatten) -> ``features`` (linear to ``num_features``, ELU:
    the penultimate layer used for FID / precision / recall) -> ``head``
    (dropout, linear to the classes). Trained as a classifier, with its own seed.
    """

    def __init__(self, num_features: int = 64, num_classes: int = DIGITS_NUM_CLASSES) -> None:
        super().__init__()
        self.num_features, self.num_classes = num_features, num_classes
        self.conv = nn.Sequential(
            nn.Conv2d(1, 16, 5, padding=2),
            nn.ELU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ELU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.features = nn.Sequential(nn.Linear(32 * 2 * 2, num_features), nn.ELU())
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(num_features, num_classes))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``[N, num_features]`` of ``[N, 1, 8, 8]`` images in ``[-1, 1]``."""
        return self.features(self.conv(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


class DigitsFeatureExtractor(nn.Module):
    """``[N, 1, 8, 8]`` images in ``[-1, 1]`` -> ``[N, num_features]`` features of a :class:`DigitsFeatureNet`.

    Has the ``num_features`` attribute torchmetrics' FID/KID read from a
    custom feature module.
    """

    def __init__(self, net: DigitsFeatureNet) -> None:
        super().__init__()
        self.net = net.eval()
        self.num_features = net.num_features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net.embed(images)


#: Architectures the manifest may name.
_ARCHITECTURES: dict[str, type[nn.Module]] = {
    cls.__name__: cls for cls in (DigitsGenerator, DigitsDiscriminator, DigitsClassifier, DigitsFeatureNet)
}


# --- loading -----------------------------------------------------------------------


def _build(model: str, expected: type[nn.Module], path: str | Path | None) -> Any:
    """Build the shipped architecture of ``model`` and fill it from the shipped file or ``path``."""
    filename = DIGITS_FILES[model]
    entry = read_manifest("digits").get("files", {}).get(filename)
    if entry is None or entry.get("architecture") != expected.__name__:
        raise CheckpointError(
            f"assets/digits/manifest.json has no {expected.__name__} entry for {filename}; reinstall gan-postproc"
        )
    module = _ARCHITECTURES[entry["architecture"]](**entry["config"])
    if path is None:
        load_state_dict_strict(module, load_shipped_state("digits", filename), f"shipped {filename}")
    else:
        load_weights(module, path)
    return module.eval()


def load_digits_generator(conditional: bool = False, path: str | Path | None = None) -> DigitsGenerator:
    """The shipped digits generator (eval mode), or weights from ``path`` in the same architecture.

    Args:
        conditional: the class-conditional generator (``G(z, y)``) instead of the unconditional one.
        path: a safetensors file to load instead of the shipped weights; its
            keys and shapes must match the shipped architecture exactly.
    """
    return _build("cond_generator" if conditional else "generator", DigitsGenerator, path)


def load_digits_discriminator(conditional: bool = False, path: str | Path | None = None) -> DigitsDiscriminator:
    """The shipped discriminator of the unconditional (or, with ``conditional``, the projection) GAN."""
    return _build("cond_discriminator" if conditional else "discriminator", DigitsDiscriminator, path)


def load_digits_classifier(robust: bool = False, path: str | Path | None = None) -> DigitsClassifier:
    """The shipped normally trained classifier, or with ``robust`` the L2-PGD adversarially trained one."""
    return _build("robust_classifier" if robust else "classifier", DigitsClassifier, path)


def load_digits_feature_net(path: str | Path | None = None) -> DigitsFeatureNet:
    """The shipped independent feature network (for measuring only)."""
    return _build("feature_net", DigitsFeatureNet, path)


def digits_feature_extractor(path: str | Path | None = None) -> DigitsFeatureExtractor:
    """The measuring features: chain images ``[N, 1, 8, 8]`` -> ``[N, 64]`` (penultimate layer of the feature net)."""
    return DigitsFeatureExtractor(load_digits_feature_net(path)).eval()


def digits_classifier(robust: bool = False) -> Classifier:
    """A shipped classifier wrapped as a :class:`~gan_postproc.pipeline.scoring.Classifier` (input range ``[-1, 1]``, 10 classes)."""
    return Classifier(load_digits_classifier(robust), DIGITS_NUM_CLASSES)


ClassifierChoice = Literal["robust", "normal"]


def digits_adapter(conditional: bool = False, classifier: ClassifierChoice | Classifier | None = "robust") -> TorchAdapter:
    """A :class:`TorchAdapter` for the shipped digits GAN, with its discriminator and a classifier attached.

    Prior ``N(0, I)`` of size 32; samples ``[N, 1, 8, 8]`` in ``[-1, 1]``; the
    discriminator is declared ``"logit"`` (non-saturating GAN: a logit of
    ``p(real | x)``); the conditional GAN's projection discriminator takes labels.
    Split points for layer-wise methods: ``latent``, ``fc`` (``[N, 128, 2, 2]``),
    ``block1`` (``[N, 64, 4, 4]``), ``block2`` (``[N, 32, 8, 8]``), ``to_image``,
    ``output`` (and the submodules inside them).

    Args:
        conditional: the class-conditional GAN instead of the unconditional one.
        classifier: ``"robust"`` (the L2-adversarially trained one, default),
            ``"normal"``, any :class:`~gan_postproc.pipeline.scoring.Classifier`, or
            ``None`` for none.
    """
    generator = load_digits_generator(conditional)
    discriminator = Discriminator(load_digits_discriminator(conditional), ScoreKind.LOGIT, conditional=conditional)
    if classifier in ("robust", "normal"):
        classifier = digits_classifier(robust=classifier == "robust")
    elif classifier is not None and not isinstance(classifier, Classifier):
        raise InputError(f"classifier must be 'robust', 'normal', a gan_postproc.Classifier or None, got {classifier!r}")
    return TorchAdapter(
        generator,
        prior=LatentPrior.of(generator.nz, "normal"),
        num_classes=DIGITS_NUM_CLASSES if conditional else None,
        output_range=(-1.0, 1.0),
        discriminator=discriminator,
        classifier=classifier,
    )
