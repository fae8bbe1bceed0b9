"""problem2/experiments.ipynb: committed without outputs, and runs top to bottom against a tiny trained VAE."""
import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from provided.paths import REPO_ROOT

NOTEBOOK = REPO_ROOT / "problem2" / "experiments.ipynb"


@pytest.fixture(scope="module")
def tiny_run_dir(tiny_vae_run_dir):
    return tiny_vae_run_dir


def execute_notebook(monkeypatch, run_dir, drum_dir):
    """Execute the notebook in a python3 kernel with the run and data folders overridden; return it."""
    monkeypatch.setenv("DRUM_VAE_RUN_DIR", str(run_dir))
    monkeypatch.setenv("DRUM_DATA_DIR", str(drum_dir))
    monkeypatch.setenv("DRUM_VAE_QUICK", "1")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(run_dir)}})
    client.execute()
    return notebook


def test_notebook_saved_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert len(code_cells) > 5
    for cell in code_cells:
        assert cell.outputs == []
        assert cell.execution_count is None


def test_notebook_runs_on_tiny_model(monkeypatch, tiny_run_dir, drum_dir):
    notebook = execute_notebook(monkeypatch, tiny_run_dir, drum_dir)

    errors = [output for cell in notebook.cells if cell.cell_type == "code"
              for output in cell.outputs if output.output_type == "error"]
    html = [output.data.get("text/html", "") for cell in notebook.cells if cell.cell_type == "code"
            for output in cell.outputs if output.output_type in ("display_data", "execute_result")]
    images = [output for cell in notebook.cells if cell.cell_type == "code"
              for output in cell.outputs if "image/png" in output.get("data", {})]
    assert errors == []
    assert sum("<audio" in text for text in html) >= 5
    assert len(images) >= 15

    analysis = {path.name for path in (tiny_run_dir / "latent_analysis").iterdir()}
    patterns = {path.name for path in (tiny_run_dir / "generated_patterns").iterdir()}
    assert {"latent_tsne.png", "disentanglement.json", "interpolation_linear.png", "traversal_z_low.png"} <= analysis
    assert {"samples_per_style.png", "complexity_vs_temperature.png", "blend_rock_jazz.png",
            "style_transfer_to_jazz.png", "humanize_variations.png", "long_sequence_rock.wav",
            "rock_example.mid", "latin_example.wav"} <= patterns


def test_notebook_missing_model_names_command(monkeypatch, drum_dir, tmp_path):
    with pytest.raises(CellExecutionError, match="python problem2/train.py"):
        execute_notebook(monkeypatch, tmp_path, drum_dir)
