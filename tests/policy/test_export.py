import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # before anything imports albumentations

import pickle
import random
import sys
from collections.abc import Iterator

import albumentations as A
import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_sample_image
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

import evoaug
from evoaug import ConfigError, InputError, Policy, get_op
from evoaug.policy._albumentations import ALBUMENTATIONS_OPS
from evoaug.policy._torchvision import PolicyTransform

# A policy whose outputs are continuous, so two draws practically never coincide.
ROTATE_OR_BRIGHTEN = Policy.from_genes(
    [[("Rotate", 1.0, 0.5)], [("Brightness", 1.0, 0.8), ("Hue", 0.5, 0.3)]],
    magnitude_sampling="uniform",
    name="test",
)


def _uint8_images(*shape: int) -> torch.Tensor:
    return torch.randint(
        0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )


# ---------------------------------------------------------------------------- torchvision


@pytest.mark.parametrize("shape", [(3, 24, 20), (5, 3, 24, 20), (1, 24, 20), (4, 1, 24, 20)])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_transform_keeps_shape_and_dtype(shape: tuple[int, ...], dtype: torch.dtype) -> None:
    images = _uint8_images(*shape)
    if dtype.is_floating_point:
        images = images.to(dtype) / 255
    out = ROTATE_OR_BRIGHTEN.to_torchvision(seed=0)(images)
    assert out.shape == images.shape
    assert out.dtype == dtype
    assert not torch.equal(out, images)


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_transform_accepts_pil_images(mode: str) -> None:
    channels = 3 if mode == "RGB" else 1
    array = _uint8_images(24, 20, channels).numpy()
    image = Image.fromarray(array if channels == 3 else array[..., 0], mode=mode)
    out = ROTATE_OR_BRIGHTEN.to_torchvision(seed=0)(image)
    assert isinstance(out, Image.Image)
    assert (out.mode, out.size) == (mode, image.size)
    # The same stream on the tensor gives the same pixels.
    tensor = v2.functional.pil_to_tensor(image)
    expected = ROTATE_OR_BRIGHTEN.to_torchvision(seed=0)(tensor)
    assert torch.equal(v2.functional.pil_to_tensor(out), expected)


def test_transform_rejects_other_pil_modes() -> None:
    image = Image.new("RGBA", (8, 8))
    with pytest.raises(InputError, match=r"mode 'L' or 'RGB', got 'RGBA'"):
        ROTATE_OR_BRIGHTEN.to_torchvision()(image)


def test_transform_rejects_bad_tensors() -> None:
    with pytest.raises(InputError, match="1 or 3 channels"):
        ROTATE_OR_BRIGHTEN.to_torchvision()(torch.zeros(4, 8, 8))
    with pytest.raises(InputError, match=r"must be in \[0, 1\]"):
        ROTATE_OR_BRIGHTEN.to_torchvision()(torch.full((3, 8, 8), 2.0))


def test_seeded_transforms_repeat_and_match_the_policy() -> None:
    images = _uint8_images(8, 3, 16, 16)
    first, second = (
        PolicyTransform(ROTATE_OR_BRIGHTEN, seed=7),
        PolicyTransform(ROTATE_OR_BRIGHTEN, seed=7),
    )
    for _ in range(3):  # the stream advances identically, call after call
        assert torch.equal(first(images), second(images))
    generator = torch.Generator().manual_seed(7)
    assert torch.equal(
        ROTATE_OR_BRIGHTEN.to_torchvision(seed=7)(images),
        ROTATE_OR_BRIGHTEN(images, generator=generator),
    )
    other = ROTATE_OR_BRIGHTEN.to_torchvision(seed=8)(images)
    assert not torch.equal(other, ROTATE_OR_BRIGHTEN.to_torchvision(seed=7)(images))


def test_unseeded_transforms_differ_and_leave_global_rng_alone() -> None:
    images = _uint8_images(8, 3, 16, 16)
    state = torch.get_rng_state()
    a = ROTATE_OR_BRIGHTEN.to_torchvision()(images)
    b = ROTATE_OR_BRIGHTEN.to_torchvision()(images)
    assert not torch.equal(a, b)
    assert torch.equal(torch.get_rng_state(), state)


def test_pickling_drops_the_used_generator() -> None:
    images = _uint8_images(4, 3, 16, 16)
    transform = ROTATE_OR_BRIGHTEN.to_torchvision(seed=3)
    first = transform(images)
    assert transform._generator is not None
    clone = pickle.loads(pickle.dumps(transform))
    assert clone._generator is None
    assert clone.policy == transform.policy
    assert torch.equal(clone(images), first)  # a fresh stream from the seed, not a continuation


def test_extra_repr_and_argument_checks() -> None:
    text = repr(ROTATE_OR_BRIGHTEN.to_torchvision(seed=5))
    assert text == (
        "PolicyTransform(policy='test', sub_policies=2, magnitude_sampling='uniform', seed=5)"
    )
    with pytest.raises(ConfigError, match="`policy` must be an evoaug.Policy, got str"):
        PolicyTransform("trivialaugment")  # type: ignore[arg-type]
    for seed in (-1, True, 1.5):
        with pytest.raises(ConfigError, match="`seed` must be a non-negative int or None"):
            PolicyTransform(ROTATE_OR_BRIGHTEN, seed=seed)  # type: ignore[arg-type]


class _SameImage(Dataset[tuple[torch.Tensor, int]]):
    """The same image at every index, augmented by ``transform``."""

    def __init__(self, transform: PolicyTransform, length: int = 12) -> None:
        self.image = torch.full((3, 16, 16), 128, dtype=torch.uint8)
        self.transform = transform
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        info = torch.utils.data.get_worker_info()
        return self.transform(self.image), -1 if info is None else info.id


def _epochs(
    loader: DataLoader[tuple[torch.Tensor, int]], n: int
) -> Iterator[dict[int, list[torch.Tensor]]]:
    for _ in range(n):
        by_worker: dict[int, list[torch.Tensor]] = {}
        for image, worker in loader:
            by_worker.setdefault(int(worker), []).append(image[0])
        yield by_worker


def _run(seed: int, loader_seed: int, epochs: int = 2) -> list[dict[int, list[torch.Tensor]]]:
    dataset = _SameImage(ROTATE_OR_BRIGHTEN.to_torchvision(seed=seed))
    dataset.transform(dataset.image)  # a generator used in the main process must not leak
    loader = DataLoader(
        dataset, batch_size=1, num_workers=2, generator=torch.Generator().manual_seed(loader_seed)
    )
    return list(_epochs(loader, epochs))


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_dataloader_workers_draw_their_own_streams_reproducibly() -> None:
    run = _run(seed=0, loader_seed=0)
    first, second = run
    assert sorted(first) == [0, 1]
    # Workers do not repeat each other, nor the next epoch's workers.
    assert not any(torch.equal(x, y) for x, y in zip(first[0], first[1], strict=False))
    assert not _same(first[0], second[0])
    # Every sample is its own draw.
    assert len({tuple(x.flatten().tolist()) for x in first[0] + first[1]}) == 12
    # The run repeats exactly; another loader seed or transform seed changes it.
    again = _run(seed=0, loader_seed=0)
    assert all(_same(a[w], b[w]) for a, b in zip(run, again, strict=True) for w in (0, 1))
    assert not _same(_run(seed=0, loader_seed=1, epochs=1)[0][0], first[0])
    assert not _same(_run(seed=1, loader_seed=0, epochs=1)[0][0], first[0])


def test_transform_composes_in_torchvision_v2_pipelines() -> None:
    pipeline = v2.Compose(
        [
            v2.ToImage(),
            ROTATE_OR_BRIGHTEN.to_torchvision(seed=0),
            v2.ToDtype(torch.float32, scale=True),
        ]
    )
    image = Image.fromarray(_uint8_images(24, 20, 3).numpy(), mode="RGB")
    out = pipeline(image)
    assert isinstance(out, tv_tensors.Image)
    assert out.shape == (3, 24, 20)
    assert out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    # Plain tensors pass through too.
    plain = v2.Compose(
        [ROTATE_OR_BRIGHTEN.to_torchvision(seed=0), v2.ToDtype(torch.float32, scale=True)]
    )(_uint8_images(2, 3, 24, 20))
    assert plain.dtype == torch.float32


# ---------------------------------------------------------------------------- albumentations


def _seed(compose: A.Compose, seed: int = 0) -> A.Compose:
    # One shared stream: Compose(seed=...) would give every transform the same seed.
    compose.set_random_state(np.random.default_rng(seed), random.Random(seed))
    return compose


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A 96 x 128 crop of scikit-learn's bundled photo: real edges, colours and histogram."""
    return np.ascontiguousarray(load_sample_image("china.jpg")[100:196, 200:328])


def _evoaug(op: str, magnitude: float, image: np.ndarray) -> np.ndarray:
    """evoaug's kernel at an exact magnitude, on an H x W x C uint8 image."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    out = get_op(op)(x, torch.tensor([magnitude]), generator=torch.Generator().manual_seed(0))
    return (out[0].permute(1, 2, 0) * 255).round().clamp(0, 255).to(torch.uint8).numpy()


def _max_diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


SUPPORTED = [op for op in evoaug.available_ops() if op in ALBUMENTATIONS_OPS]


def test_builtin_ops_are_supported_except_sharpness_and_perspective() -> None:
    assert sorted(set(evoaug.ops.BUILTIN_OPS) - set(ALBUMENTATIONS_OPS)) == [
        "Perspective",
        "Sharpness",
    ]


@pytest.mark.parametrize("sampling", ["fixed", "uniform"])
def test_supported_policy_exports_and_runs(sampling: str, photo: np.ndarray) -> None:
    policy = Policy.from_genes(
        [[(op, 0.8, 0.6), ("Invert", 0.5, 0.0)] for op in SUPPORTED],
        magnitude_sampling=sampling,  # type: ignore[arg-type]
    )
    compose = _seed(policy.to_albumentations())
    assert isinstance(compose, A.Compose)
    (one_of,) = compose.transforms
    assert isinstance(one_of, A.OneOf)
    assert len(one_of.transforms) == len(policy)
    assert all(isinstance(t, A.Sequential) and len(t) == 2 for t in one_of.transforms)
    changed = 0
    for _ in range(60):
        out = compose(image=photo)["image"]
        assert out.shape == photo.shape
        assert out.dtype == np.uint8
        changed += not np.array_equal(out, photo)
    assert changed > 40


def test_identity_levels_give_back_the_input(photo: np.ndarray) -> None:
    ops = [op for op in SUPPORTED if get_op(op).has_magnitude] + ["Identity"]
    policy = Policy.from_genes([[(op, 1.0, 0.0) for op in ops]])
    compose = _seed(policy.to_albumentations())
    assert np.array_equal(compose(image=photo)["image"], photo)


# Largest difference in 8-bit levels between albumentations and evoaug at the same magnitude:
# 0 where both compute the same integers (flips, lookup tables on the same 8-bit values);
# 1 where albumentations rounds in 8-bit fixed point (OpenCV's blends, multiplications and
# bilinear warps with 5-bit weights) and evoaug in float32; 3 for Hue, which OpenCV rotates in an
# 8-bit HSV image whose hue has 2-degree steps; Equalize is checked apart (another lookup table).
AGREEMENT = [
    ("Invert", 0.0, 0),
    ("HorizontalFlip", 0.0, 0),
    ("VerticalFlip", 0.0, 0),
    ("Grayscale", 0.0, 0),
    ("Posterize", 0.5, 0),  # 5 bits
    ("Posterize", 1.0, 0),  # 2 bits
    ("Solarize", 0.3, 0),
    ("Solarize", 0.8, 0),
    ("TranslateX", 0.25, 0),  # 32 of 128 px: a whole number, so no truncation
    ("TranslateY", 0.5, 0),  # 48 of 96 px
    ("AutoContrast", 0.0, 1),
    ("Brightness", 0.5, 1),
    ("Contrast", 0.6, 1),
    ("Color", 0.9, 1),
    ("Rotate", 0.2, 1),
    ("Rotate", 1.0, 1),
    ("Zoom", 0.75, 1),
    ("GaussianBlur", 0.5, 1),
    ("Hue", 0.4, 3),
]


@pytest.mark.parametrize(("op", "level", "tolerance"), AGREEMENT)
def test_albumentations_agrees_with_evoaug(
    op: str, level: float, tolerance: int, photo: np.ndarray
) -> None:
    spec = get_op(op)
    magnitude = float(spec.magnitude(level))
    signs = (1.0, -1.0) if spec.signed else (1.0,)
    expected = {s: _evoaug(op, s * magnitude, photo) for s in signs}
    compose = _seed(Policy.from_genes([[(op, 1.0, level)]]).to_albumentations())
    seen = set()
    for _ in range(8):
        out = compose(image=photo)["image"]
        diffs = {s: _max_diff(out, e) for s, e in expected.items()}
        sign = min(diffs, key=diffs.__getitem__)
        assert diffs[sign] <= tolerance, f"{op}: max difference {diffs}"
        seen.add(sign)
    assert seen == set(signs)  # a signed op takes both signs


def test_equalize_uses_a_close_lookup_table(photo: np.ndarray) -> None:
    # evoaug reproduces PIL's table; albumentations' mode="cv" is OpenCV's, whose rounding of the
    # cumulative histogram differs by a few levels (its mode="pil" is one bin off, worse).
    out = Policy.from_genes([[("Equalize", 1.0, 0.0)]]).to_albumentations()(image=photo)["image"]
    diff = np.abs(out.astype(np.int16) - _evoaug("Equalize", 0.0, photo).astype(np.int16))
    assert diff.max() <= 6
    assert diff.mean() < 1.0


def test_shear_is_centred_so_it_differs_by_a_shift(photo: np.ndarray) -> None:
    # Documented difference: albumentations shears about the centre, evoaug about the top edge,
    # so albumentations' ShearX output is evoaug's moved right by m * H / 2 pixels.
    level = 0.25 / 0.99  # tan = 0.25: a 12 px shift on 96 rows
    compose = _seed(Policy.from_genes([[("ShearX", 1.0, level)]]).to_albumentations())
    for _ in range(4):
        out = compose(image=photo)["image"].astype(np.int16)
        candidates = []
        for sign in (1.0, -1.0):
            expected = _evoaug("ShearX", sign * 0.25, photo).astype(np.int16)
            shift = int(sign * 12)
            if shift > 0:
                candidates.append(np.abs(out[:, shift:] - expected[:, :-shift]).max())
            else:
                candidates.append(np.abs(out[:, :shift] - expected[:, -shift:]).max())
        assert min(candidates) <= 1


def test_gaussian_noise_has_the_gene_std() -> None:
    gray = np.full((64, 64, 3), 128, dtype=np.uint8)
    compose = _seed(Policy.from_genes([[("GaussianNoise", 1.0, 0.5)]]).to_albumentations())
    noise = compose(image=gray)["image"].astype(np.float64) - 128
    assert abs(noise.std() / 255 - 0.1) < 0.005  # 12288 samples: the std's error is ~0.6%


def test_cutout_fills_a_gray_square() -> None:
    black = np.zeros((32, 32, 3), dtype=np.uint8)
    compose = _seed(Policy.from_genes([[("Cutout", 1.0, 1.0)]]).to_albumentations())
    out = compose(image=black)["image"]
    assert set(np.unique(out).tolist()) == {0, 128}  # evoaug's 0.5 is 128 on 8 bits
    rows, cols = np.nonzero(out[..., 0])
    assert (int(np.ptp(rows)) + 1, int(np.ptp(cols)) + 1) == (16, 16)  # side 0.5 of 32 px


def test_probabilities_and_sub_policy_choice_are_kept() -> None:
    gray = np.full((4, 4, 3), 100, dtype=np.uint8)
    policy = Policy.from_genes([[("Invert", 0.6, 0.0)], [("Identity", 1.0, 0.0)]])
    compose = _seed(policy.to_albumentations())
    inverted = np.mean([compose(image=gray)["image"][0, 0, 0] == 155 for _ in range(2000)])
    assert abs(inverted - 0.3) < 0.04  # 1/2 (sub-policy) x 0.6 (gene); sd 0.01


def test_uniform_sampling_maps_to_ranges() -> None:
    policy = Policy.from_genes(
        [[("Rotate", 1.0, 0.2), ("Posterize", 1.0, 0.5), ("Solarize", 0.5, 0.4)]],
        magnitude_sampling="uniform",
    )
    rotate, posterize, solarize = _seed(policy.to_albumentations()).transforms[0].transforms[0]
    assert rotate.rotate == (-27.0, 27.0)  # signed: uniform in [-m, m]
    assert posterize.num_bits == (5, 8)  # between the gene's 5 bits and the identity's 8
    assert solarize.threshold_range == (0.6, 1.0)
    assert solarize.p == 0.5


@pytest.mark.parametrize("sampling", ["fixed", "uniform"])
def test_to_dict_round_trip_gives_the_same_outputs(sampling: str, photo: np.ndarray) -> None:
    policy = Policy.from_genes(
        [[(op, 0.7, 0.5)] for op in SUPPORTED],
        magnitude_sampling=sampling,  # type: ignore[arg-type]
    )
    compose = policy.to_albumentations()
    loaded = A.from_dict(A.to_dict(compose))
    assert A.to_dict(loaded) == A.to_dict(compose)
    _seed(compose, 3)
    _seed(loaded, 3)
    for _ in range(20):
        assert np.array_equal(compose(image=photo)["image"], loaded(image=photo)["image"])


def test_unsupported_ops_are_refused_by_name() -> None:
    policy = Policy.from_genes(
        [[("Sharpness", 0.5, 0.3), ("Rotate", 1.0, 0.1)], [("Perspective", 1.0, 0.5)]]
    )
    with pytest.raises(ConfigError, match=r"'Sharpness' \(albumentations' Sharpen cannot blur"):
        policy.to_albumentations()
    with pytest.raises(ConfigError, match=r"'Perspective'.*Supported ops: AutoContrast, "):
        policy.to_albumentations()
    with pytest.raises(ConfigError, match="Sharpness"):
        Policy.preset("autoaugment-cifar10").to_albumentations()


def test_custom_ops_are_refused() -> None:
    @evoaug.register_op("TestDarken", low=0.0, high=0.5)
    def darken(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
        return images * (1 - magnitudes.view(-1, 1, 1, 1))

    try:
        policy = Policy.from_genes([[("TestDarken", 1.0, 0.5)]])
        with pytest.raises(ConfigError, match="'TestDarken' \\(a custom op albumentations"):
            policy.to_albumentations()
    finally:
        evoaug.ops.unregister_op("TestDarken")


def test_missing_albumentations_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "albumentations", None)  # makes the import fail
    with pytest.raises(ConfigError, match="pip install albumentations"):
        Policy.from_genes([[("Invert", 1.0, 0.0)]]).to_albumentations()
