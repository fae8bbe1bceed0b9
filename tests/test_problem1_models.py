"""Shapes, value ranges, label handling and initialisation of the letter DCGAN."""
import pytest
import torch

from problem1.models import Discriminator, Generator, one_hot_labels


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_generator_shape_and_range():
    generator = Generator(z_dim=100)
    images = generator(torch.randn(5, 100))
    assert images.shape == (5, 1, 28, 28)
    assert images.min() >= -1.0
    assert images.max() <= 1.0


def test_generator_attributes():
    generator = Generator(z_dim=32, conditional=True)
    assert generator.z_dim == 32
    assert generator.conditional is True
    assert generator.num_classes == 26


def test_generator_conditional_indices_equal_one_hot():
    generator = Generator(conditional=True).eval()
    z = torch.randn(4, 100)
    indices = torch.tensor([0, 5, 25, 7])
    from_indices = generator(z, indices)
    from_one_hot = generator(z, torch.nn.functional.one_hot(indices, 26).float())
    assert from_indices.shape == (4, 1, 28, 28)
    assert torch.equal(from_indices, from_one_hot)


def test_generator_conditional_label_changes_image():
    generator = Generator(conditional=True).eval()
    z = torch.randn(1, 100)
    assert not torch.equal(generator(z, torch.tensor([0])), generator(z, torch.tensor([1])))


def test_generator_conditional_requires_label():
    with pytest.raises(ValueError, match="needs class_label"):
        Generator(conditional=True)(torch.randn(2, 100))


def test_generator_unconditional_rejects_label():
    with pytest.raises(ValueError, match="conditional=True"):
        Generator()(torch.randn(2, 100), torch.tensor([0, 1]))


def test_generator_rejects_wrong_z_dim():
    with pytest.raises(ValueError, match=r"\[B, 100\]"):
        Generator(z_dim=100)(torch.randn(2, 64))


def test_discriminator_probability_shape_and_range():
    discriminator = Discriminator()
    probabilities = discriminator(torch.rand(6, 1, 28, 28) * 2 - 1)
    assert probabilities.shape == (6, 1)
    assert probabilities.min() > 0.0
    assert probabilities.max() < 1.0


def test_discriminator_feature_layers():
    discriminator = Discriminator().eval()
    images = torch.rand(3, 1, 28, 28) * 2 - 1
    features = discriminator.features(images)
    assert features.shape == (3, 256, 3, 3)
    assert discriminator.classifier_in_features == 2304
    assert discriminator.feature_matching_features(images).shape == (3, 2304)
    expected_logits = discriminator.classifier(features.flatten(1))
    assert torch.allclose(discriminator.logits(images), expected_logits)
    assert torch.allclose(discriminator(images), torch.sigmoid(expected_logits))


def test_discriminator_conditional_shapes():
    discriminator = Discriminator(conditional=True).eval()
    images = torch.rand(4, 1, 28, 28) * 2 - 1
    labels = torch.tensor([0, 1, 2, 25])
    assert discriminator(images, labels).shape == (4, 1)
    assert discriminator.feature_matching_features(images, labels).shape == (4, 2304)


def test_discriminator_conditional_label_changes_output():
    discriminator = Discriminator(conditional=True).eval()
    images = torch.rand(1, 1, 28, 28) * 2 - 1
    assert not torch.equal(discriminator(images, torch.tensor([0])), discriminator(images, torch.tensor([3])))


def test_discriminator_rejects_wrong_image_shape():
    with pytest.raises(ValueError, match=r"\[B, 1, 28, 28\]"):
        Discriminator()(torch.rand(2, 1, 32, 32))


def test_dcgan_init_statistics():
    generator = Generator()
    weight = generator.project[0].weight  # 6272 x 100 values
    assert abs(weight.std().item() - 0.02) < 0.001
    assert abs(weight.mean().item()) < 0.001
    assert torch.count_nonzero(generator.project[0].bias) == 0
    batch_norm = generator.project[1].weight
    assert abs(batch_norm.mean().item() - 1.0) < 0.002


def test_one_hot_labels_rejects_out_of_range():
    with pytest.raises(ValueError, match="out of range"):
        one_hot_labels(torch.tensor([0, 26]))


def test_one_hot_labels_rejects_wrong_width():
    with pytest.raises(ValueError, match=r"\[B, 26\]"):
        one_hot_labels(torch.zeros(2, 10))
