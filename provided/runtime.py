"""Run-time helpers shared by both problems: device choice, seeding, atomic writes, versions."""
from __future__ import annotations

import json
import os
import platform
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def select_device(name: str = "auto") -> torch.device:
    """Resolve a --device value to a torch.device.

    "auto" picks CUDA, then Apple MPS, then the CPU. Requesting a backend that
    is not available raises ValueError naming it.
    """
    if name not in DEVICE_CHOICES:
        raise ValueError(f"invalid device {name!r}: choose one of {', '.join(DEVICE_CHOICES)}")
    mps_available = hasattr(torch.backends, "mps") and torch.backends.mps.is_available()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps_available:
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available: use --device cpu or auto")
    if name == "mps" and not mps_available:
        raise ValueError("device 'mps' requested but Apple MPS is not available: use --device cpu or auto")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) from one integer."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _atomic_write(path: Path, write_fn, mode: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as handle:
            write_fn(handle)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates the file as 0600; give it the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_name, 0o666 & ~umask)
        os.replace(tmp_name, path)
    except BaseException:
        # Also on KeyboardInterrupt: never leave a partial file under the final name.
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise


def atomic_torch_save(obj, path) -> None:
    """torch.save to a temporary file in the same folder, then rename over ``path``."""
    _atomic_write(Path(path), lambda handle: torch.save(obj, handle), "wb")


def atomic_write_json(obj, path, indent: int = 2) -> None:
    """Write JSON atomically (temporary file, then rename)."""
    _atomic_write(Path(path), lambda handle: json.dump(obj, handle, indent=indent), "w")


def software_versions() -> dict:
    """Versions that affect numerical results, for run logs."""
    return {
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
    }
