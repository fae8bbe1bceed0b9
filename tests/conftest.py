"""Shared fixtures: one full dataset per seed, generated once and cached between runs."""
import hashlib
from pathlib import Path

import pytest
import torch

import setup_data
from provided.paths import REPO_ROOT
from provided.runtime import atomic_torch_save

CACHE_DIR = REPO_ROOT / "tests" / ".cache"
COURSE_DATA_DIR = Path(__file__).resolve().parent / "fixtures" / "course_data"


def _generator_fingerprint() -> str:
    """Hash of the code that writes the data, so a changed generator never reuses old files."""
    digest = hashlib.sha256()
    for source in (REPO_ROOT / "setup_data.py", REPO_ROOT / "provided" / "drum_process.py"):
        digest.update(source.read_bytes())
    return digest.hexdigest()[:12]


def generated_dataset(seed: int) -> Path:
    """Return a data folder (fonts/ and drums/) written by setup_data for ``seed``, creating it once."""
    target = CACHE_DIR / f"data-seed{seed}-{_generator_fingerprint()}"
    complete = (target / "fonts" / "metadata.json").exists() and (target / "drums" / "patterns.npz").exists()
    if not complete:
        setup_data.main(["--seed", str(seed), "--output-dir", str(target)])
    return target


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Full dataset with the project's default seed 641."""
    return generated_dataset(641)


@pytest.fixture(scope="session")
def font_dir(data_dir) -> Path:
    return data_dir / "fonts"


@pytest.fixture(scope="session")
def drum_dir(data_dir) -> Path:
    return data_dir / "drums"


@pytest.fixture(scope="session")
def course_data_dir() -> Path:
    """Sample files written by the course starter's own data script (seed 641)."""
    return COURSE_DATA_DIR


TINY_VAE_ARGS = {"z_high_dim": 4, "z_low_dim": 12, "conv_channels": 8, "hidden_dim": 32, "latent_hidden_dim": 16}


@pytest.fixture(scope="session")
def tiny_vae_run_dir(drum_dir, tmp_path_factory) -> Path:
    """A run folder whose best_model.pth is a small drum VAE trained for 2 epochs on 400 patterns.

    It is saved in problem2/train.py's checkpoint layout, so every loader of that file accepts it.
    """
    from problem2.dataset import DrumPatternDataset
    from problem2.hierarchical_vae import HierarchicalDrumVAE
    from problem2.training_utils import train_hierarchical_vae

    torch.manual_seed(0)
    subset = DrumPatternDataset(drum_dir, "train").patterns[:400]
    loader = torch.utils.data.DataLoader(subset, batch_size=64, shuffle=True)
    model = HierarchicalDrumVAE(**TINY_VAE_ARGS)
    train_hierarchical_vae(model, loader, 2, "cpu", progress=False)
    run_dir = tmp_path_factory.mktemp("tiny_vae_run")
    atomic_torch_save({"model_state": model.state_dict(), "model_args": model.model_args(),
                       "config": {"epochs": 2}, "epoch": 2}, run_dir / "best_model.pth")
    return run_dir
