"""Tests for the GAN remedies in problem1/fixes.py, against hand-written references."""
import copy
import math

import pytest
import torch
from torch import nn

from problem1.fixes import (
    FIX_CHOICES,
    FeatureMatching,
    MinibatchDiscrimination,
    MinibatchDiscriminationHead,
    MinibatchDiscriminationLayer,
    UnrolledGAN,
    make_remedy,
    train_gan_with_fix,
)
from problem1.models import Discriminator, Generator
from problem1.training_dynamics import (
    ShuffledBatches,
    discriminator_loss_from_logits,
    generator_nonsaturating_loss,
)


class FixedImages(nn.Module):
    """Generator stub that ignores z and returns a fixed tensor, scaled by one learnable weight."""

    def __init__(self, images):
        super().__init__()
        self.images = images
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, z, class_label=None):
        return self.scale * self.images


class IdentityFeatures(nn.Module):
    """Discriminator stub whose matched features are its input rows."""

    def feature_matching_features(self, img, class_label=None):
        return img


class SmallDiscriminator(nn.Module):
    """Dropout-free MLP with the letter discriminator's structure, for exact comparisons."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(2, 8), nn.Tanh())
        self.classifier_in_features = 8
        self.classifier = nn.Linear(8, 1)

    def feature_matching_features(self, points, class_label=None):
        return self.features(points)

    def logits(self, points, class_label=None):
        return self.classifier(self.features(points))


class SmallGenerator(nn.Module):
    def __init__(self):
        super().__init__()
        self.z_dim = 3
        self.net = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2))

    def forward(self, z, class_label=None):
        return self.net(z)


def small_setup(seed=0):
    """Small G and D, a D optimizer with one step taken (so Adam has moments), and one batch."""
    torch.manual_seed(seed)
    generator, discriminator = SmallGenerator(), SmallDiscriminator()
    d_optimizer = torch.optim.Adam(discriminator.parameters(), lr=0.05, betas=(0.5, 0.999))
    real, z = torch.randn(6, 2), torch.randn(6, 3)
    loss = discriminator_loss_from_logits(discriminator.logits(real), discriminator.logits(generator(z).detach()))
    loss.backward()
    d_optimizer.step()
    d_optimizer.zero_grad(set_to_none=True)
    return generator, discriminator, d_optimizer, real, z


def generator_grads(remedy, generator, discriminator, d_optimizer, real, z, seed=5):
    torch.manual_seed(seed)
    loss, _ = remedy.generator_loss(
        generator=generator, discriminator=discriminator, real_images=real, z=z, class_label=None,
        d_optimizer=d_optimizer,
    )
    return torch.autograd.grad(loss, list(generator.parameters()))


# ----------------------------------------------------------------- registry


def test_fix_choices_names():
    assert FIX_CHOICES == ("feature_matching", "unrolled", "minibatch")


def test_make_remedy_builds_each_choice():
    for name in FIX_CHOICES:
        assert make_remedy(name).name == name


def test_make_remedy_unknown_lists_choices():
    with pytest.raises(ValueError, match="feature_matching, unrolled, minibatch"):
        make_remedy("dropout")


def test_make_remedy_passes_options():
    remedy = make_remedy("unrolled", unroll_steps=2, differentiate_through_unroll=False)
    assert remedy.unroll_steps == 2
    assert remedy.differentiate_through_unroll is False


# ----------------------------------------------------------------- feature matching


def test_feature_matching_hand_reference():
    real = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # mean (2, 3)
    fake = torch.tensor([[0.0, 0.0], [2.0, 2.0]])  # mean (1, 1)
    loss, stats = FeatureMatching().generator_loss(
        generator=FixedImages(fake), discriminator=IdentityFeatures(), real_images=real, z=torch.zeros(2, 1),
        class_label=None, d_optimizer=None,
    )
    assert loss.item() == pytest.approx(1.0**2 + 2.0**2)
    assert stats["feature_distance"] == pytest.approx(5.0)


def test_feature_matching_mean_reduction():
    real = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    fake = torch.tensor([[0.0, 0.0], [2.0, 2.0]])
    loss, _ = FeatureMatching(reduction="mean").generator_loss(
        generator=FixedImages(fake), discriminator=IdentityFeatures(), real_images=real, z=torch.zeros(2, 1),
        class_label=None, d_optimizer=None,
    )
    assert loss.item() == pytest.approx(2.5)


def test_feature_matching_real_features_detached():
    real = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    generator = FixedImages(torch.tensor([[0.0, 0.0], [2.0, 2.0]]))
    loss, _ = FeatureMatching().generator_loss(
        generator=generator, discriminator=IdentityFeatures(), real_images=real, z=torch.zeros(2, 1),
        class_label=None, d_optimizer=None,
    )
    loss.backward()
    assert real.grad is None
    # d/ds sum_k (r_k - s m_k)^2 at s = 1 with r = (2, 3), m = (1, 1): -2 (1 + 2) = -6.
    assert generator.scale.grad.item() == pytest.approx(-6.0)


def test_feature_matching_rejects_bad_reduction():
    with pytest.raises(ValueError, match="reduction"):
        FeatureMatching(reduction="max")


# ----------------------------------------------------------------- minibatch discrimination


def reference_closeness(features, T, num_kernels, kernel_dim):
    """o(x_i)_b = sum over j != i of exp(-||M_ib - M_jb||_1), written as plain loops."""
    n = features.shape[0]
    M = (features @ T).view(n, num_kernels, kernel_dim)
    out = torch.zeros(n, num_kernels)
    for i in range(n):
        for b in range(num_kernels):
            for j in range(n):
                if j != i:
                    out[i, b] += math.exp(-(M[i, b] - M[j, b]).abs().sum().item())
    return out


def test_minibatch_layer_sum_hand_reference():
    torch.manual_seed(0)
    layer = MinibatchDiscriminationLayer(4, num_kernels=3, kernel_dim=2, statistic="sum")
    features = torch.randn(5, 4) * 0.3
    expected = reference_closeness(features, layer.T.detach(), 3, 2)
    assert torch.allclose(layer.closeness(features), expected, atol=1e-6)


def test_minibatch_layer_mean_hand_reference():
    torch.manual_seed(0)
    layer = MinibatchDiscriminationLayer(4, num_kernels=3, kernel_dim=2)
    assert layer.statistic == "mean"
    features = torch.randn(5, 4) * 0.3
    expected = reference_closeness(features, layer.T.detach(), 3, 2) / 4
    assert torch.allclose(layer.closeness(features), expected, atol=1e-6)


def test_minibatch_identical_samples_maximal():
    summed = MinibatchDiscriminationLayer(4, num_kernels=3, kernel_dim=2, statistic="sum")
    averaged = MinibatchDiscriminationLayer(4, num_kernels=3, kernel_dim=2)
    features = torch.randn(1, 4).repeat(6, 1)
    assert torch.allclose(summed.closeness(features), torch.full((6, 3), 5.0))
    assert torch.allclose(averaged.closeness(features), torch.ones(6, 3))


def test_minibatch_rejects_unknown_statistic():
    with pytest.raises(ValueError, match="statistic 'max'"):
        MinibatchDiscriminationLayer(4, statistic="max")
    with pytest.raises(ValueError, match="statistic 'max'"):
        MinibatchDiscrimination(statistic="max")


def test_minibatch_distant_samples_near_zero():
    layer = MinibatchDiscriminationLayer(2, num_kernels=2, kernel_dim=1)
    with torch.no_grad():
        layer.T.copy_(torch.eye(2))
    features = torch.tensor([[0.0, 0.0], [100.0, 100.0], [200.0, -200.0], [-300.0, 50.0]])
    # The closest pair in any kernel is 50 apart, and each sample has at most two such
    # neighbours, so every o_b <= 2 exp(-50) = 3.9e-22.
    assert layer.closeness(features).max().item() <= 2 * math.exp(-50) * 1.0001


def test_minibatch_layer_output_concatenates():
    layer = MinibatchDiscriminationLayer(4, num_kernels=3, kernel_dim=2)
    features = torch.randn(5, 4)
    output = layer(features)
    assert output.shape == (5, 7)
    assert torch.equal(output[:, :4], features)


def test_minibatch_init_scale():
    torch.manual_seed(0)
    layer = MinibatchDiscriminationLayer(400, num_kernels=50, kernel_dim=4, init_scale=0.1)
    # Entries of T are drawn from N(0, (0.1 / sqrt(400))^2) = N(0, 0.005^2).
    assert layer.T.std().item() == pytest.approx(0.005, rel=0.02)


def test_minibatch_rejects_bad_init_scale():
    with pytest.raises(ValueError, match="init_scale"):
        MinibatchDiscriminationLayer(4, init_scale=0.0)


def test_minibatch_single_sample_zero():
    layer = MinibatchDiscriminationLayer(4, num_kernels=3, kernel_dim=2)
    assert torch.equal(layer.closeness(torch.randn(1, 4)), torch.zeros(1, 3))


def test_minibatch_layer_rejects_wrong_width():
    layer = MinibatchDiscriminationLayer(4, num_kernels=3, kernel_dim=2)
    with pytest.raises(ValueError, match=r"\[N, 4\]"):
        layer(torch.randn(5, 3))


def test_minibatch_prepare_replaces_classifier():
    discriminator = Discriminator()
    remedy = MinibatchDiscrimination(num_kernels=10, kernel_dim=3)
    remedy.prepare_discriminator(discriminator)
    head = discriminator.classifier
    assert isinstance(head, MinibatchDiscriminationHead)
    assert head.minibatch.in_features == discriminator.classifier_in_features
    assert head.output[0].in_features == discriminator.classifier_in_features + 10
    assert head.output[-1].out_features == 1
    remedy.prepare_discriminator(discriminator)
    assert discriminator.classifier is head
    assert discriminator.logits(torch.zeros(4, 1, 28, 28)).shape == (4, 1)


def test_minibatch_head_linear_without_hidden_layer():
    head = MinibatchDiscriminationHead(8, num_kernels=3, kernel_dim=2, hidden_features=0)
    assert isinstance(head.output, torch.nn.Linear)
    assert head.output.in_features == 11
    assert head(torch.randn(5, 8)).shape == (5, 1)


def test_minibatch_head_rejects_negative_hidden():
    with pytest.raises(ValueError, match="hidden_features -1"):
        MinibatchDiscriminationHead(8, hidden_features=-1)


def test_minibatch_generator_loss_nonsaturating():
    torch.manual_seed(0)
    generator, discriminator = SmallGenerator(), SmallDiscriminator()
    remedy = MinibatchDiscrimination(num_kernels=4, kernel_dim=2)
    remedy.prepare_discriminator(discriminator)
    z = torch.randn(6, 3)
    loss, _ = remedy.generator_loss(
        generator=generator, discriminator=discriminator, real_images=torch.randn(6, 2), z=z, class_label=None,
        d_optimizer=None,
    )
    expected = -torch.log(torch.sigmoid(discriminator.logits(generator(z)))).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_minibatch_loss_needs_prepared_discriminator():
    with pytest.raises(ValueError, match="prepare_discriminator"):
        MinibatchDiscrimination().generator_loss(
            generator=SmallGenerator(), discriminator=SmallDiscriminator(), real_images=torch.randn(2, 2),
            z=torch.randn(2, 3), class_label=None, d_optimizer=None,
        )


# ----------------------------------------------------------------- unrolled GAN


@pytest.mark.parametrize("full", [True, False])
def test_unrolled_leaves_discriminator_unchanged(full):
    generator, discriminator, d_optimizer, real, z = small_setup()
    weights = copy.deepcopy(discriminator.state_dict())
    optimizer_state = copy.deepcopy(d_optimizer.state_dict())
    generator_grads(UnrolledGAN(3, differentiate_through_unroll=full), generator, discriminator, d_optimizer, real, z)
    for name, value in discriminator.state_dict().items():
        assert torch.equal(value, weights[name]), name
    for param in discriminator.parameters():
        assert param.grad is None
    after = d_optimizer.state_dict()
    assert after["param_groups"] == optimizer_state["param_groups"]
    for index, state in optimizer_state["state"].items():
        for key, value in state.items():
            assert torch.equal(after["state"][index][key], value), (index, key)


def test_unrolled_lookahead_matches_adam():
    generator, discriminator, d_optimizer, real, z = small_setup()
    fake = generator(z).detach()
    params, losses = UnrolledGAN(3, differentiate_through_unroll=False).unroll(
        discriminator, d_optimizer, real, fake, None, discriminator_loss_from_logits
    )
    twin = copy.deepcopy(discriminator)
    twin_optimizer = torch.optim.Adam(twin.parameters(), lr=0.05, betas=(0.5, 0.999))
    twin_optimizer.load_state_dict(d_optimizer.state_dict())
    twin_losses = []
    for _ in range(3):
        loss = discriminator_loss_from_logits(twin.logits(real), twin.logits(fake))
        twin_losses.append(loss.item())
        twin_optimizer.zero_grad()
        loss.backward()
        twin_optimizer.step()
    assert losses == pytest.approx(twin_losses, rel=1e-6)
    for name, param in twin.named_parameters():
        assert torch.allclose(params[f"discriminator.{name}"], param, atol=1e-6), name


def test_unrolled_first_order_gradient_reference():
    generator, discriminator, d_optimizer, real, z = small_setup()
    grads = generator_grads(UnrolledGAN(2, differentiate_through_unroll=False), generator, discriminator,
                            d_optimizer, real, z)

    # Reference: advance a deep copy of D two real Adam steps, then the non-saturating loss against it.
    twin = copy.deepcopy(discriminator)
    twin_optimizer = torch.optim.Adam(twin.parameters(), lr=0.05, betas=(0.5, 0.999))
    twin_optimizer.load_state_dict(d_optimizer.state_dict())
    fake = generator(z)
    for _ in range(2):
        loss = discriminator_loss_from_logits(twin.logits(real), twin.logits(fake.detach()))
        twin_optimizer.zero_grad()
        loss.backward()
        twin_optimizer.step()
    expected = torch.autograd.grad(generator_nonsaturating_loss(twin.logits(fake)), list(generator.parameters()))
    for got, want in zip(grads, expected):
        assert torch.allclose(got, want, atol=1e-6)


def test_unrolled_full_gradient_differs():
    generator, discriminator, d_optimizer, real, z = small_setup()
    full = generator_grads(UnrolledGAN(3, differentiate_through_unroll=True), generator, discriminator,
                           d_optimizer, real, z)
    first_order = generator_grads(UnrolledGAN(3, differentiate_through_unroll=False), generator, discriminator,
                                  d_optimizer, real, z)
    difference = max((a - b).abs().max().item() for a, b in zip(full, first_order))
    assert all(torch.isfinite(grad).all() for grad in full)
    assert difference > 1e-4


@pytest.mark.parametrize("lookahead_optimizer", ["adam", "sgd"])
def test_unrolled_full_gradient_finite_differences(lookahead_optimizer):
    # In float64, the gradient through the unrolled steps must match central differences of the loss.
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        generator, discriminator, d_optimizer, real, z = small_setup()
        remedy = UnrolledGAN(3, differentiate_through_unroll=True, lookahead_optimizer=lookahead_optimizer,
                             lookahead_lr=0.1 if lookahead_optimizer == "sgd" else None)

        def loss_value():
            loss, _ = remedy.generator_loss(generator=generator, discriminator=discriminator, real_images=real,
                                            z=z, class_label=None, d_optimizer=d_optimizer)
            return loss

        weight = generator.net[0].weight
        (analytic,) = torch.autograd.grad(loss_value(), [weight])
        step = 1e-6
        for index in [(0, 0), (1, 2), (3, 1), (7, 0)]:
            with torch.no_grad():
                weight[index] += step
            upper = loss_value().item()
            with torch.no_grad():
                weight[index] -= 2 * step
            lower = loss_value().item()
            with torch.no_grad():
                weight[index] += step
            assert analytic[index].item() == pytest.approx((upper - lower) / (2 * step), rel=1e-5, abs=1e-9), index
    finally:
        torch.set_default_dtype(default_dtype)


def test_unrolled_sgd_step_reference():
    generator, discriminator, d_optimizer, real, z = small_setup()
    fake = generator(z).detach()
    params, _ = UnrolledGAN(1, differentiate_through_unroll=False, lookahead_optimizer="sgd", lookahead_lr=0.1).unroll(
        discriminator, d_optimizer, real, fake, None, discriminator_loss_from_logits
    )
    loss = discriminator_loss_from_logits(discriminator.logits(real), discriminator.logits(fake))
    grads = torch.autograd.grad(loss, list(discriminator.parameters()))
    for (name, param), grad in zip(discriminator.named_parameters(), grads):
        assert torch.allclose(params[f"discriminator.{name}"], param - 0.1 * grad, atol=1e-7), name


def test_unrolled_letter_models_both_modes():
    torch.manual_seed(0)
    generator, discriminator = Generator(), Discriminator()
    d_optimizer = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real, z = torch.rand(2, 1, 28, 28) * 2 - 1, torch.randn(2, 100)
    for full in (True, False):
        remedy = UnrolledGAN(1, differentiate_through_unroll=full)
        loss, stats = remedy.generator_loss(
            generator=generator, discriminator=discriminator, real_images=real, z=z, class_label=None,
            d_optimizer=d_optimizer,
        )
        grads = torch.autograd.grad(loss, list(generator.parameters()))
        assert math.isfinite(loss.item())
        assert all(torch.isfinite(grad).all() for grad in grads)
        assert set(stats) == {"lookahead_d_loss_first", "lookahead_d_loss_last"}


def test_unrolled_rejects_bad_options():
    with pytest.raises(ValueError, match="unroll_steps"):
        UnrolledGAN(0)
    with pytest.raises(ValueError, match="lookahead_optimizer"):
        UnrolledGAN(lookahead_optimizer="rmsprop")


def test_unrolled_adam_needs_adam_optimizer():
    generator, discriminator, _, real, z = small_setup()
    sgd = torch.optim.SGD(discriminator.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="lookahead_optimizer='sgd'"):
        generator_grads(UnrolledGAN(1), generator, discriminator, sgd, real, z)


# ----------------------------------------------------------------- training loop


@pytest.mark.parametrize("fix_type", FIX_CHOICES)
def test_train_gan_with_fix_one_epoch(fix_type):
    torch.manual_seed(0)
    images, labels = torch.rand(16, 1, 28, 28), torch.arange(16) % 26
    options = {"unroll_steps": 1} if fix_type == "unrolled" else {}
    history = train_gan_with_fix(
        Generator(), Discriminator(), ShuffledBatches(images, labels, batch_size=8), num_epochs=1,
        fix_type=fix_type, remedy_options=options, progress=False,
    )
    assert history["remedy"] == fix_type
    assert len(history["steps"]["g_loss"]) == 2
