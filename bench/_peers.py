"""The peers of ``bench/throughput.py`` that are not torchvision: albumentations and kornia.

kornia is optional (the ``bench`` extra, ``pip install -e '.[bench]'``): :func:`kornia_peers`
raises ``ImportError`` with that advice when it is missing, and the throughput script then skips
its rows with a note.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

import evoaug

__all__ = ["KORNIA_INSTALL", "KORNIA_SEQ_P", "albumentations_peer", "kornia_peers", "on_uint8"]

KORNIA_INSTALL = "pip install -e '.[bench]'"
KORNIA_SEQ_P = 1 / 12  # each of the 12 per-sample transforms: about one op per image, as in TA


def albumentations_peer(
    size: int, seed: int, *, verbose: bool = True
) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """Albumentations TrivialAugmentWide: evoaug's export when it works, else a hand-written one.

    Returns:
        A function of one HxWxC uint8 image, and a note on which variant was used.
    """
    import albumentations as A

    try:
        compose = evoaug.Policy.preset("trivialaugment", image_size=size).to_albumentations()
        compose.set_random_seed(seed)
        compose(image=np.zeros((32, 32, 3), np.uint8))
        note = '`Policy.preset("trivialaugment").to_albumentations()`'
    except Exception as err:  # the export is optional here: fall back, and say why
        reason = f"{type(err).__name__}: {str(err).split('. ')[0]}"
        if verbose:
            print(f"note: to_albumentations() failed ({reason}); using a hand-written equivalent")
        shear = float(np.degrees(np.arctan(0.99)))  # TrivialAugmentWide: tan(angle) up to 0.99
        compose = A.Compose(
            [
                A.OneOf(
                    [
                        A.NoOp(p=1.0),
                        A.Affine(shear={"x": (-shear, shear), "y": (0, 0)}, p=1.0),
                        A.Affine(shear={"x": (0, 0), "y": (-shear, shear)}, p=1.0),
                        A.Affine(translate_px={"x": (-32, 32), "y": (0, 0)}, p=1.0),
                        A.Affine(translate_px={"x": (0, 0), "y": (-32, 32)}, p=1.0),
                        A.Affine(rotate=(-135, 135), p=1.0),
                        A.ColorJitter(brightness=0.99, contrast=0, saturation=0, hue=0, p=1.0),
                        A.ColorJitter(brightness=0, contrast=0, saturation=0.99, hue=0, p=1.0),
                        A.ColorJitter(brightness=0, contrast=0.99, saturation=0, hue=0, p=1.0),
                        A.Sharpen(alpha=(0.0, 0.99), lightness=(1.0, 1.0), p=1.0),
                        A.Posterize(num_bits=(2, 8), p=1.0),
                        A.Solarize(threshold_range=(0.0, 1.0), p=1.0),
                        A.AutoContrast(method="pil", p=1.0),
                        A.Equalize(mode="pil", p=1.0),
                    ],
                    p=1.0,
                )
            ],
            seed=seed,
        )
        note = (
            "a hand-written `A.OneOf` of the 14 TrivialAugmentWide ops (p=1; `Sharpen` only"
            f" sharpens), because `to_albumentations()` raised {reason}"
        )

    def run(image: np.ndarray) -> np.ndarray:
        return compose(image=image)["image"]

    return run, note


def kornia_peers() -> tuple[torch.nn.Module, torch.nn.Module, str]:
    """kornia 0.9's TrivialAugment and a per-sample ``AugmentationSequential`` of the same ops.

    - ``kornia.augmentation.auto.TrivialAugment()`` (its default policy of 12 ops) draws one op
      per call for the whole batch and a magnitude per image.
    - ``kornia.augmentation.AugmentationSequential(..., same_on_batch=False)`` of 12 per-sample
      transforms, one per op of that policy, each applied with probability
      :data:`KORNIA_SEQ_P`: every image draws its own coin flips and magnitudes (about one op per
      image, as TrivialAugment; kornia 0.9 runs each transform on the whole batch and keeps the
      images whose coin came up, with ``torch.where``). The ranges are near TrivialAugmentWide's;
      the cost does not depend on them.

    Both take float32 images in ``[0, 1]`` on any device and draw from torch's global generator.

    Returns:
        The two modules and kornia's version.

    Raises:
        ImportError: kornia is not installed; the message says how to install it.
    """
    try:
        import kornia
        import kornia.augmentation as K
        from kornia.augmentation.auto import TrivialAugment
    except ImportError as err:
        raise ImportError(f"kornia is not installed ({err}): {KORNIA_INSTALL}") from err

    p = KORNIA_SEQ_P
    shear = math.degrees(math.atan(0.3))  # kornia TA's shear_x/shear_y range: 0.3
    per_sample = K.AugmentationSequential(
        K.RandomAutoContrast(p=p),
        K.RandomEqualize(p=p),
        K.RandomRotation(degrees=30.0, p=p),
        K.RandomPosterize(bits=(4.0, 8.0), p=p),
        K.RandomSolarize(thresholds=0.5, additions=0.0, p=p),  # threshold in [0, 1]
        K.RandomContrast(contrast=(0.1, 1.9), p=p),
        K.RandomBrightness(brightness=(0.1, 1.9), p=p),
        K.RandomSharpness(sharpness=(0.1, 1.9), p=p),
        K.RandomShear(shear=(-shear, shear, 0.0, 0.0), p=p),
        K.RandomShear(shear=(0.0, 0.0, -shear, shear), p=p),
        K.RandomTranslate(translate_x=(-0.3, 0.3), p=p),
        K.RandomTranslate(translate_y=(-0.3, 0.3), p=p),
        same_on_batch=False,
    )
    return TrivialAugment(), per_sample, str(kornia.__version__)


def on_uint8(augment: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], object]:
    """``augment`` of float32 ``[0, 1]`` images, called on uint8 images (converted around it)."""

    def run(images: torch.Tensor) -> torch.Tensor:
        out = augment(images.float().div_(255.0))
        return out.mul_(255.0).round_().clamp_(0.0, 255.0).to(torch.uint8)

    return run
