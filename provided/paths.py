"""Repository-relative default locations, so scripts work from any working directory."""
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO_ROOT / "data"
DEFAULT_FONT_DIR = DEFAULT_DATA_DIR / "fonts"
DEFAULT_DRUM_DIR = DEFAULT_DATA_DIR / "drums"
PROBLEM1_RESULTS = REPO_ROOT / "problem1" / "results"
PROBLEM2_RESULTS = REPO_ROOT / "problem2" / "results"

SETUP_DATA_COMMAND = "python setup_data.py --seed 641"


def missing_data_message(path) -> str:
    """Return the error text for a dataset path that does not exist."""
    return f"{path} not found: run {SETUP_DATA_COMMAND} from {REPO_ROOT}"
