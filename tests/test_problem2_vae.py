"""Model, ELBO pieces, schedules and the IWAE bound of the hierarchical drum VAE."""
import math

import numpy as np
import pytest
import torch

from problem2.evaluate import iwae_log_likelihood, iwae_log_weights
from problem2.hierarchical_vae import HierarchicalDrumVAE, VAEOutput, load_vae_checkpoint
from problem2.training_utils import (
    apply_free_bits,
    compute_hierarchical_elbo,
    gaussian_kl,
    kl_anneal_schedule,
    learning_rate_schedule,
    temperature_annealing_schedule,
)


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """Run this module on one torch thread: the model is tiny, and extra threads only wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def patterns():
    """Eight fixed binary patterns [8, 16, 9]."""
    generator = torch.Generator().manual_seed(0)
    return torch.bernoulli(torch.full((8, 16, 9), 0.2), generator=generator)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return HierarchicalDrumVAE().eval()


@pytest.fixture(scope="module")
def coupled_model():
    """A model whose z_high copies the first 4 dimensions of the z_low sample (noise std 0.1)
    and whose prior p(z_low | z_high) predicts them back (std 0.1), so z_low and z_high are
    strongly dependent under q, the case where the ELBO's low-level KL needs the joint sample."""
    torch.manual_seed(0)
    model = HierarchicalDrumVAE().eval()
    log_var_small = 2 * math.log(0.1)
    with torch.no_grad():
        for head, in_dim, out_dim in ((model.high_encoder, 12, 4), (model.low_prior, 4, 12)):
            first, second, last = head[0], head[2], head[4]
            for layer in (first, second, last):
                layer.weight.zero_()
                layer.bias.zero_()
            copied = min(in_dim, out_dim)
            eye = torch.eye(copied)
            first.weight[:copied, :copied] = eye            # relu(z)
            first.weight[copied:2 * copied, :copied] = -eye  # relu(-z)
            second.weight[:2 * copied, :2 * copied] = torch.eye(2 * copied)
            last.weight[:copied, :copied] = eye              # mean = relu(z) - relu(-z) = z
            last.weight[:copied, copied:2 * copied] = -eye
            last.bias[out_dim:out_dim + copied] = log_var_small
    return model


# ---------------------------------------------------------------------------
# Gaussian KL and free bits

def test_gaussian_kl_two_diagonal_gaussians():
    mu_q = torch.tensor([0.5, -1.0])
    logvar_q = torch.tensor([math.log(2.0), 0.0])
    mu_p = torch.tensor([0.0, 1.0])
    logvar_p = torch.tensor([0.0, math.log(4.0)])
    kl = gaussian_kl(mu_q, logvar_q, mu_p, logvar_p)
    # By hand, 0.5 * (log s_p^2 - log s_q^2 + (s_q^2 + (m_q - m_p)^2) / s_p^2 - 1) per dimension:
    # dim 0: 0.5 * (0 - log 2 + (2 + 0.25) / 1 - 1) = 0.5 * (1.25 - log 2)
    # dim 1: 0.5 * (log 4 - 0 + (1 + 4) / 4 - 1) = 0.5 * (log 4 + 0.25)
    assert kl[0].item() == pytest.approx(0.5 * (1.25 - math.log(2.0)), abs=1e-6)
    assert kl[1].item() == pytest.approx(0.5 * (math.log(4.0) + 0.25), abs=1e-6)


def test_gaussian_kl_standard_normal_default():
    kl = gaussian_kl(torch.tensor([1.0, 0.0]), torch.tensor([0.0, math.log(0.5)]))
    assert kl[0].item() == pytest.approx(0.5, abs=1e-6)  # 0.5 * mu^2
    assert kl[1].item() == pytest.approx(0.5 * (0.5 - 1.0 - math.log(0.5)), abs=1e-6)


def test_gaussian_kl_matches_torch_distributions():
    generator = torch.Generator().manual_seed(1)
    mu_q, logvar_q, mu_p, logvar_p = torch.randn(4, 3, 5, generator=generator)
    expected = torch.distributions.kl_divergence(
        torch.distributions.Normal(mu_q, (0.5 * logvar_q).exp()),
        torch.distributions.Normal(mu_p, (0.5 * logvar_p).exp()),
    )
    assert torch.allclose(gaussian_kl(mu_q, logvar_q, mu_p, logvar_p), expected, atol=1e-5)


def test_free_bits_clamps_each_dimension():
    kl = torch.tensor([[0.05, 0.5, 2.0],
                       [0.15, 0.1, 2.0]])  # batch means 0.1, 0.3, 2.0
    clamped = apply_free_bits(kl, 0.2)
    assert clamped.tolist() == pytest.approx([0.2, 0.3, 2.0])


def test_free_bits_not_applied_to_total():
    # The total (2.4) is far above 3 * 0.2, but the first dimension is still raised to the floor.
    kl = torch.tensor([[0.1, 0.3, 2.0]])
    assert apply_free_bits(kl, 0.2).sum().item() == pytest.approx(2.5)


def test_free_bits_stops_gradient_below_floor():
    kl = torch.tensor([[0.1, 0.5]], requires_grad=True)
    apply_free_bits(kl, 0.2).sum().backward()
    assert kl.grad.tolist() == [[0.0, 1.0]]


def test_free_bits_zero_is_batch_mean():
    kl = torch.tensor([[0.1, 0.5], [0.3, 0.1]])
    assert apply_free_bits(kl, 0.0).tolist() == pytest.approx([0.2, 0.3])


def test_free_bits_negative_rejected():
    with pytest.raises(ValueError, match="free_bits"):
        apply_free_bits(torch.zeros(1, 2), -0.1)


# ---------------------------------------------------------------------------
# Schedules

@pytest.mark.parametrize("epoch, expected", [
    (0, 0.0), (6.25, 0.5), (12.5, 1.0), (20, 1.0), (25, 0.0), (31.25, 0.5), (99, 1.0),
])
def test_cyclical_schedule_values(epoch, expected):
    beta = kl_anneal_schedule(epoch, "cyclical", total_epochs=100, n_cycles=4, ratio=0.5)
    assert beta == pytest.approx(expected)


@pytest.mark.parametrize("epoch, expected", [(0, 0.0), (25, 0.5), (50, 1.0), (80, 1.0)])
def test_linear_schedule_values(epoch, expected):
    assert kl_anneal_schedule(epoch, "linear", total_epochs=100, ratio=0.5) == pytest.approx(expected)


@pytest.mark.parametrize("epoch, expected", [
    (0, 1 / (1 + math.exp(5))), (25, 0.5), (50, 1 / (1 + math.exp(-5))),
])
def test_sigmoid_schedule_values(epoch, expected):
    beta = kl_anneal_schedule(epoch, "sigmoid", total_epochs=100, ratio=0.5, sigmoid_steepness=10)
    assert beta == pytest.approx(expected)


def test_none_schedule_is_one():
    assert kl_anneal_schedule(0, "none") == 1.0


def test_schedule_unknown_method_rejected():
    with pytest.raises(ValueError, match="cyclical"):
        kl_anneal_schedule(0, "cosine")


def test_temperature_schedule_endpoints():
    assert temperature_annealing_schedule(0, total_epochs=11, start=2.0, end=0.5) == pytest.approx(2.0)
    assert temperature_annealing_schedule(10, total_epochs=11, start=2.0, end=0.5) == pytest.approx(0.5)
    assert temperature_annealing_schedule(5, total_epochs=11, start=2.0, end=0.5) == pytest.approx(1.0)


def test_cosine_learning_rate_values():
    # Halfway through, the cosine curve is the mean of the first and last learning rates.
    assert learning_rate_schedule(0, 1e-3, "cosine", total_epochs=11) == pytest.approx(1e-3)
    assert learning_rate_schedule(5, 1e-3, "cosine", total_epochs=11) == pytest.approx(0.5 * (1e-3 + 1e-5))
    assert learning_rate_schedule(10, 1e-3, "cosine", total_epochs=11) == pytest.approx(1e-5)


def test_constant_learning_rate_values():
    assert learning_rate_schedule(0, 2e-3, "constant", total_epochs=11) == 2e-3
    assert learning_rate_schedule(10, 2e-3, "constant", total_epochs=11) == 2e-3


def test_learning_rate_schedule_unknown_name():
    with pytest.raises(ValueError, match="unknown learning-rate schedule 'step'"):
        learning_rate_schedule(0, 1e-3, "step")


# ---------------------------------------------------------------------------
# Model interface

def test_forward_shapes(model, patterns):
    output = model(patterns)
    assert isinstance(output, VAEOutput)
    assert output.logits.shape == (8, 16, 9)
    assert output.mu_low.shape == (8, 12)
    assert output.z_high.shape == (8, 4)
    assert output.prior_logvar_low.shape == (8, 12)


def test_encode_hierarchy_deterministic_without_sampling(model, patterns):
    first = model.encode_hierarchy(patterns, sample=False)
    second = model.encode_hierarchy(patterns, sample=False)
    assert all(torch.equal(a, b) for a, b in zip(first, second))


def test_decode_hierarchy_draws_z_low(model):
    torch.manual_seed(0)
    logits = model.decode_hierarchy(torch.zeros(3, 4))
    assert logits.shape == (3, 16, 9)


def test_decode_hierarchy_temperature_divides_logits(model):
    z_high, z_low = torch.randn(2, 4), torch.randn(2, 12)
    plain = model.decode_hierarchy(z_high, z_low)
    tempered = model.decode_hierarchy(z_high, z_low, temperature=2.0)
    assert torch.allclose(tempered, plain / 2.0)


def test_sample_is_binary(model):
    samples = model.sample(5)
    assert samples.shape == (5, 16, 9)
    assert set(samples.unique().tolist()) <= {0.0, 1.0}


def test_forward_rejects_wrong_shape(model):
    with pytest.raises(ValueError, match=r"\[B, 16, 9\]"):
        model(torch.zeros(2, 9, 16))


def test_model_args_rebuild_model():
    original = HierarchicalDrumVAE(z_high_dim=3, z_low_dim=6, conv_channels=8, hidden_dim=32,
                                   latent_hidden_dim=16, dropout=0.1)
    rebuilt = HierarchicalDrumVAE(**original.model_args())
    rebuilt.load_state_dict(original.state_dict())
    assert rebuilt.model_args() == original.model_args()


def test_invalid_dropout_rejected():
    with pytest.raises(ValueError, match="dropout"):
        HierarchicalDrumVAE(dropout=1.0)


def test_load_checkpoint_missing_names_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="problem2/train.py"):
        load_vae_checkpoint(tmp_path / "best_model.pth")


# ---------------------------------------------------------------------------
# ELBO and IWAE

def test_elbo_terms_add_up(model, patterns):
    torch.manual_seed(0)
    terms = compute_hierarchical_elbo(patterns, model(patterns))
    assert terms.elbo.item() == pytest.approx(-(terms.recon + terms.kl_low + terms.kl_high).item(), abs=1e-4)


def test_elbo_loss_with_unit_weights_is_negative_elbo(model, patterns):
    torch.manual_seed(0)
    terms = compute_hierarchical_elbo(patterns, model(patterns), beta_low=1.0, beta_high=1.0)
    assert terms.loss.item() == pytest.approx(-terms.elbo.item(), abs=1e-4)


def test_elbo_beta_zero_loss_is_reconstruction(model, patterns):
    torch.manual_seed(0)
    terms = compute_hierarchical_elbo(patterns, model(patterns), beta_low=0.0, beta_high=0.0)
    assert terms.loss.item() == pytest.approx(terms.recon.item(), abs=1e-5)


def _mean_and_standard_error(values):
    values = np.asarray(values, dtype=np.float64)
    return values.mean(), values.std(ddof=1) / np.sqrt(len(values))


@pytest.mark.parametrize("fixture", ["model", "coupled_model"])
def test_iwae_k1_equals_elbo_in_expectation(fixture, patterns, request):
    model = request.getfixturevalue(fixture)
    draws = 400
    torch.manual_seed(1)
    with torch.no_grad():
        elbo = [compute_hierarchical_elbo(patterns, model(patterns)).elbo.item() for _ in range(draws)]
        iwae = [iwae_log_weights(model, patterns, k=1).mean().item() for _ in range(draws)]
    elbo_mean, elbo_se = _mean_and_standard_error(elbo)
    iwae_mean, iwae_se = _mean_and_standard_error(iwae)
    assert abs(elbo_mean - iwae_mean) < 4 * math.hypot(elbo_se, iwae_se)


def test_iwae_tightens_as_k_grows(model, patterns):
    bounds = {}
    for k in (1, 10, 100):
        estimates = [iwae_log_likelihood(model, patterns, k=k, seed=seed).mean() for seed in range(30)]
        bounds[k] = _mean_and_standard_error(estimates)
    for smaller, larger in ((1, 10), (10, 100)):
        gap = bounds[larger][0] - bounds[smaller][0]
        assert gap > 4 * math.hypot(bounds[larger][1], bounds[smaller][1])


def test_iwae_same_seed_reproducible(model, patterns):
    first = iwae_log_likelihood(model, patterns, k=64, chunk_size=16, seed=3)
    second = iwae_log_likelihood(model, patterns, k=64, chunk_size=16, seed=3)
    assert first.shape == (8,)
    assert np.array_equal(first, second)


def test_iwae_rejects_zero_samples(model, patterns):
    with pytest.raises(ValueError, match="k must be"):
        iwae_log_likelihood(model, patterns, k=0)
