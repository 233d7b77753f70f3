"""``evoaug demo``: augment scikit-learn's bundled digits with presets (no download).

Writes ``samples.png`` (one row per policy, the same eight digits augmented per image) and each
policy as YAML to the output folder.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from evoaug.policy import Policy

__all__ = ["load_digits_images", "run_demo"]

DEMO_POLICIES = ("identity", "trivialaugment", "autoaugment-cifar10", "randaugment")


def load_digits_images(size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1,797 8x8 digits as float images ``[N, 1, size, size]`` in [0, 1]."""
    from sklearn.datasets import load_digits

    data = load_digits()
    images = torch.as_tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    return images.clamp_(0.0, 1.0), torch.as_tensor(data.target)


def run_demo(out: Path, *, seed: int = 0, n_images: int = 8) -> Path:
    """Augment digits with each demo preset; return the path of the sample grid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    images, labels = load_digits_images()
    batch = images[:n_images]
    fig, axes = plt.subplots(
        len(DEMO_POLICIES), n_images, figsize=(n_images * 1.1, len(DEMO_POLICIES) * 1.25)
    )
    for row, name in enumerate(DEMO_POLICIES):
        policy = Policy.preset(name)
        policy.to_yaml(out / f"{name}.yaml")
        augmented = policy(batch, generator=torch.Generator().manual_seed(seed + row))
        for col in range(n_images):
            ax = axes[row, col]
            ax.imshow(augmented[col, 0].numpy(), cmap="gray", vmin=0.0, vmax=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(name, fontsize=7)
            if row == 0:
                ax.set_title(f"label {int(labels[col])}", fontsize=7)
    fig.tight_layout()
    grid = out / "samples.png"
    fig.savefig(grid, dpi=100)
    plt.close(fig)
    print(f"evoaug demo: augmented {n_images} digits with {len(DEMO_POLICIES)} presets")
    print(f"  sample grid: {grid}")
    print(f"  policies:    {', '.join(str(out / f'{n}.yaml') for n in DEMO_POLICIES)}")
    return grid
