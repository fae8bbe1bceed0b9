"""Shared fixtures: one full dataset per seed, generated once and cached between runs."""
import hashlib
from pathlib import Path

import pytest

import setup_data
from provided.paths import REPO_ROOT

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
