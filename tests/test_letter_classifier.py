"""LetterClassifier: accuracy on the generated fonts, input ranges, and the cache's life cycle.

The first run trains the classifier on the generated dataset, which takes about
a minute on 2 CPU cores, and caches it under tests/.cache. Later runs load it in
seconds. Cache tests train on the 52-image course sample, which takes a second.
"""
import json
import shutil

import pytest
import torch

from problem1.dataset import FontDataset
from provided.letter_classifier import (
    CACHE_FORMAT,
    CACHE_NAME,
    LetterClassifier,
    load_letter_classifier,
    train_letter_classifier,
)


@pytest.fixture(scope="module")
def classifier(font_dir):
    return load_letter_classifier(font_dir, verbose=False)


@pytest.fixture(scope="module")
def val_images(font_dir):
    dataset = FontDataset(font_dir, "val")
    return dataset.images, dataset.labels


@pytest.fixture
def small_font_dir(course_data_dir, tmp_path):
    """A private copy of the 52-image course sample, so cache files stay in tmp_path."""
    target = tmp_path / "fonts"
    shutil.copytree(course_data_dir / "fonts", target)
    return target


def test_recorded_val_accuracy(classifier):
    assert classifier.record["val_accuracy"] >= 0.99


def test_recomputed_val_accuracy(classifier, val_images):
    images, labels = val_images
    with torch.no_grad():
        predictions = classifier.predict_proba(images, value_range=(0.0, 1.0)).argmax(dim=1)
    assert (predictions == labels).float().mean().item() >= 0.99


def test_record_has_confusion_summary(classifier):
    assert set(classifier.record["per_letter_accuracy"]) == set("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    assert len(classifier.record["soft_confusions"]) == 20
    assert classifier.record["training_seed"] == 0


def test_ranges_give_identical_predictions(classifier, val_images):
    images = val_images[0][:200]
    with torch.no_grad():
        from_unit = classifier.predict_proba(images, value_range=(0.0, 1.0))
        from_symmetric = classifier.predict_proba(images * 2 - 1, value_range=(-1.0, 1.0))
    assert torch.equal(from_unit.argmax(dim=1), from_symmetric.argmax(dim=1))
    assert torch.allclose(from_unit, from_symmetric, atol=1e-5)


def test_pixel_scale_input_rejected(classifier, val_images):
    with pytest.raises(ValueError, match=r"value_range=\(0.0, 1.0\)"):
        classifier(val_images[0][:4] * 255, value_range=(0.0, 1.0))


def test_symmetric_input_declared_unit_rejected(classifier, val_images):
    with pytest.raises(ValueError, match="outside the declared value_range"):
        classifier(val_images[0][:4] * 2 - 1, value_range=(0.0, 1.0))


def test_unit_input_with_default_range_warns(classifier, val_images):
    with pytest.warns(UserWarning, match=r"pass value_range=\(0.0, 1.0\)"):
        classifier(val_images[0][:4])


def test_output_shapes(classifier, val_images):
    images = val_images[0][:5]
    with torch.no_grad():
        features = classifier.features(images, value_range=(0.0, 1.0))
        logits = classifier(images[:, 0], value_range=(0.0, 1.0))  # [B, 28, 28] is accepted too
        probabilities = classifier.predict_proba(images, value_range=(0.0, 1.0))
    assert features.shape == (5, LetterClassifier.feature_dim)
    assert logits.shape == (5, 26)
    assert torch.allclose(probabilities.sum(dim=1), torch.ones(5))


def test_wrong_image_size_rejected(classifier):
    with pytest.raises(ValueError, match=r"\[B, 1, 28, 28\]"):
        classifier(torch.zeros(2, 1, 32, 32))


def test_noise_not_recognised(classifier):
    noise = torch.rand(500, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        confidence = classifier.predict_proba(noise).max(dim=1).values
    assert (confidence >= 0.9).float().mean().item() < 0.05


def test_same_object_within_process(font_dir, classifier):
    assert load_letter_classifier(font_dir, verbose=False) is classifier


def test_cache_written_and_reused(small_font_dir):
    first = load_letter_classifier(small_font_dir, verbose=False)
    checkpoint = torch.load(small_font_dir / CACHE_NAME, weights_only=True)
    assert checkpoint["val_accuracy"] == first.record["val_accuracy"]
    assert checkpoint["training_seed"] == 0
    assert load_letter_classifier(small_font_dir, verbose=False) is first


def test_stale_cache_retrained(small_font_dir, capsys):
    load_letter_classifier(small_font_dir, verbose=False)
    metadata_path = small_font_dir / "metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata["seed"] = 1  # what a dataset regenerated with another seed looks like to the fingerprint
    metadata_path.write_text(json.dumps(metadata))

    load_letter_classifier(small_font_dir, verbose=True)
    assert "different dataset" in capsys.readouterr().out


def test_rerendered_image_invalidates_cache(small_font_dir, capsys):
    load_letter_classifier(small_font_dir, verbose=False)
    first, second = sorted((small_font_dir / "train").glob("*.png"))[:2]
    first.write_bytes(second.read_bytes())  # same file list and seed, different pixels

    load_letter_classifier(small_font_dir, verbose=True)
    assert "different dataset" in capsys.readouterr().out


def test_corrupt_cache_retrained(small_font_dir):
    (small_font_dir / CACHE_NAME).write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="retraining"):
        model = load_letter_classifier(small_font_dir, verbose=False)
    assert torch.load(small_font_dir / CACHE_NAME, weights_only=True)["format"] == CACHE_FORMAT
    assert not model.training


def test_retrain_returns_new_object(small_font_dir):
    first = load_letter_classifier(small_font_dir, verbose=False)
    assert load_letter_classifier(small_font_dir, retrain=True, verbose=False) is not first


def test_training_keeps_global_rng(small_font_dir):
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    train_letter_classifier(small_font_dir, epochs=1, verbose=False)
    assert torch.equal(torch.rand(3), expected)


def test_training_restores_thread_count(small_font_dir):
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        train_letter_classifier(small_font_dir, epochs=1, verbose=False)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)


def test_training_is_deterministic(small_font_dir):
    _, first = train_letter_classifier(small_font_dir, epochs=2, verbose=False)
    _, second = train_letter_classifier(small_font_dir, epochs=2, verbose=False)
    assert first["soft_confusions"] == second["soft_confusions"]


def test_missing_font_dir_names_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="setup_data.py"):
        load_letter_classifier(tmp_path / "nowhere", verbose=False)
