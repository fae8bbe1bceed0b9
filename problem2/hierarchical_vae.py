"""Two-level VAE for 16 x 9 binary drum patterns (16 steps x 9 instruments).

Generative model (top-down)::

    z_high ~ N(0, I)                                   4-d, carries the style
    z_low  ~ p(z_low | z_high) = N(mu(z_high), diag(exp(logvar(z_high))))   12-d, the variation
    x      ~ Bernoulli(sigmoid(decoder(z_high, z_low)))   one independent bit per cell

Inference (bottom-up)::

    q(z_low | x)       a 1-D convolutional encoder over the 16 steps, instruments as channels
    q(z_high | z_low)  an MLP on a sample of z_low

The training objective is the hierarchical ELBO, in nats per pattern::

    ELBO(x) = E_q[log p(x | z_high, z_low)]
              - KL(q(z_low | x) || p(z_low | z_high))
              - KL(q(z_high | z_low) || N(0, I))

computed, with the per-level KL weights of the annealing schedule and free
bits, by ``problem2.training_utils.compute_hierarchical_elbo``.

Temperature (``decode_hierarchy``, ``sample``): a temperature T scales the
standard deviation of every latent draw from the prior (z_high ~ N(0, T^2 I),
z_low from p(z_low | z_high) with its std times T) and also divides the
decoder's logits, so T < 1 gives patterns closer to each style's prototype and
T = 1 samples the model exactly.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

N_STEPS = 16
N_INSTRUMENTS = 9
TRAIN_COMMAND = "python problem2/train.py"


class VAEOutput(NamedTuple):
    """One forward pass; every tensor has batch size B on its first axis.

    logits: [B, 16, 9] Bernoulli logits of p(x | z_high, z_low).
    mu_low, logvar_low: [B, z_low_dim], q(z_low | x).
    mu_high, logvar_high: [B, z_high_dim], q(z_high | z_low) at the sampled z_low.
    z_low, z_high: [B, z_low_dim], [B, z_high_dim], the reparameterised samples.
    prior_mu_low, prior_logvar_low: [B, z_low_dim], p(z_low | z_high) at the sampled z_high.
    """

    logits: torch.Tensor
    mu_low: torch.Tensor
    logvar_low: torch.Tensor
    mu_high: torch.Tensor
    logvar_high: torch.Tensor
    z_low: torch.Tensor
    z_high: torch.Tensor
    prior_mu_low: torch.Tensor
    prior_logvar_low: torch.Tensor


def _gaussian_head(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    """MLP that outputs a diagonal Gaussian's [mean, log-variance], 2 * out_dim values."""
    return nn.Sequential(
        nn.Linear(in_dim, hidden_dim),
        nn.ReLU(),
        nn.Linear(hidden_dim, hidden_dim),
        nn.ReLU(),
        nn.Linear(hidden_dim, 2 * out_dim),
    )


class HierarchicalDrumVAE(nn.Module):
    """Hierarchical VAE with z_high (style) above z_low (variation); see the module docstring.

    Arguments: latent sizes ``z_high_dim`` and ``z_low_dim``; ``conv_channels``,
    the width of the convolutional encoder; ``hidden_dim``, the width of the MLPs
    (the decoder and the encoder head); ``latent_hidden_dim``, the width of the
    two small MLPs between the latent levels (q(z_high | z_low) and
    p(z_low | z_high)); ``dropout``, the dropout probability after each hidden
    layer of the decoder, active in training mode only.
    """

    def __init__(
        self,
        z_high_dim: int = 4,
        z_low_dim: int = 12,
        conv_channels: int = 64,
        hidden_dim: int = 256,
        latent_hidden_dim: int = 64,
        dropout: float = 0.0,
    ):
        super().__init__()
        for name, value in (("z_high_dim", z_high_dim), ("z_low_dim", z_low_dim),
                            ("conv_channels", conv_channels), ("hidden_dim", hidden_dim),
                            ("latent_hidden_dim", latent_hidden_dim)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.z_high_dim = int(z_high_dim)
        self.z_low_dim = int(z_low_dim)

        # q(z_low | x): instruments are the input channels, the 16 steps the length.
        # Two stride-2 convolutions reduce 16 steps to 4 before the flatten, so the
        # linear head keeps the position of each feature within the bar.
        self.low_encoder = nn.Sequential(
            nn.Conv1d(N_INSTRUMENTS, conv_channels, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv1d(conv_channels, 2 * conv_channels, kernel_size=3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv1d(2 * conv_channels, 2 * conv_channels, kernel_size=3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(2 * conv_channels * (N_STEPS // 4), hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, 2 * z_low_dim),
        )
        self.high_encoder = _gaussian_head(z_low_dim, latent_hidden_dim, z_high_dim)
        self.low_prior = _gaussian_head(z_high_dim, latent_hidden_dim, z_low_dim)
        # p(x | z_high, z_low): an MLP, because every cell has its own probability per style.
        self.decoder = nn.Sequential(
            nn.Linear(z_high_dim + z_low_dim, hidden_dim),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, hidden_dim),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, N_STEPS * N_INSTRUMENTS),
        )

    @staticmethod
    def _check_patterns(x: torch.Tensor) -> None:
        if x.dim() != 3 or tuple(x.shape[1:]) != (N_STEPS, N_INSTRUMENTS):
            raise ValueError(f"expected patterns of shape [B, 16, 9] (steps x instruments), got {tuple(x.shape)}")

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """Draw z = mu + exp(logvar / 2) * eps with eps ~ N(0, I), differentiable in mu and logvar."""
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    def encode_low(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (mu_low, logvar_low) of q(z_low | x), each [B, z_low_dim], for x [B, 16, 9] in {0, 1}."""
        self._check_patterns(x)
        stats = self.low_encoder(x.float().transpose(1, 2))
        return stats.chunk(2, dim=-1)

    def encode_high(self, z_low: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (mu_high, logvar_high) of q(z_high | z_low), each [..., z_high_dim]."""
        return self.high_encoder(z_low).chunk(2, dim=-1)

    def encode_hierarchy(self, x: torch.Tensor, sample: bool = True):
        """Return (mu_low, logvar_low, mu_high, logvar_high) for patterns x [B, 16, 9] in {0, 1}.

        q(z_high | z_low) is evaluated at a reparameterised z_low sample when
        ``sample`` is True and at mu_low when it is False (deterministic
        posterior means for analysis).
        """
        mu_low, logvar_low = self.encode_low(x)
        z_low = self.reparameterize(mu_low, logvar_low) if sample else mu_low
        mu_high, logvar_high = self.encode_high(z_low)
        return mu_low, logvar_low, mu_high, logvar_high

    def prior_low(self, z_high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (prior_mu_low, prior_logvar_low) of the learned p(z_low | z_high), each [..., z_low_dim]."""
        return self.low_prior(z_high).chunk(2, dim=-1)

    def decode_logits(self, z_high: torch.Tensor, z_low: torch.Tensor) -> torch.Tensor:
        """Return the logits of p(x | z_high, z_low), [..., 16, 9], at temperature 1."""
        logits = self.decoder(torch.cat([z_high, z_low], dim=-1))
        return logits.unflatten(-1, (N_STEPS, N_INSTRUMENTS))

    def decode_hierarchy(self, z_high: torch.Tensor, z_low: torch.Tensor | None = None,
                         temperature: float = 1.0) -> torch.Tensor:
        """Return Bernoulli logits [B, 16, 9] for z_high [B, z_high_dim].

        When ``z_low`` is None it is drawn from p(z_low | z_high) with the
        prior's standard deviation multiplied by ``temperature``. The logits are
        divided by ``temperature`` in both cases (see the module docstring).
        """
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if z_low is None:
            prior_mu, prior_logvar = self.prior_low(z_high)
            z_low = prior_mu + temperature * torch.exp(0.5 * prior_logvar) * torch.randn_like(prior_mu)
        return self.decode_logits(z_high, z_low) / temperature

    def forward(self, x: torch.Tensor, beta: float = 1.0) -> VAEOutput:
        """Run inference and reconstruction on x [B, 16, 9] in {0, 1}; return a ``VAEOutput``.

        ``beta`` is kept for the course interface and does not change the
        output: the KL weights enter in ``compute_hierarchical_elbo``.
        """
        mu_low, logvar_low = self.encode_low(x)
        z_low = self.reparameterize(mu_low, logvar_low)
        mu_high, logvar_high = self.encode_high(z_low)
        z_high = self.reparameterize(mu_high, logvar_high)
        prior_mu_low, prior_logvar_low = self.prior_low(z_high)
        logits = self.decode_logits(z_high, z_low)
        return VAEOutput(logits, mu_low, logvar_low, mu_high, logvar_high, z_low, z_high,
                         prior_mu_low, prior_logvar_low)

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, z_high: torch.Tensor | None = None,
               return_logits: bool = False) -> torch.Tensor:
        """Draw ``n`` binary patterns, float [n, 16, 9] of 0/1, from the model.

        z_high ~ N(0, temperature^2 I) unless ``z_high`` [n, z_high_dim] is
        given; z_low comes from p(z_low | z_high) as in ``decode_hierarchy``.
        With ``return_logits`` the tempered logits are returned instead of bits.
        """
        device = next(self.parameters()).device
        if z_high is None:
            z_high = temperature * torch.randn(n, self.z_high_dim, device=device)
        elif tuple(z_high.shape) != (n, self.z_high_dim):
            raise ValueError(f"z_high must have shape [{n}, {self.z_high_dim}], got {tuple(z_high.shape)}")
        logits = self.decode_hierarchy(z_high.to(device), temperature=temperature)
        if return_logits:
            return logits
        return torch.bernoulli(torch.sigmoid(logits))

    def model_args(self) -> dict:
        """Constructor keyword arguments that rebuild this architecture."""
        conv = self.low_encoder[0]
        return {
            "z_high_dim": self.z_high_dim,
            "z_low_dim": self.z_low_dim,
            "conv_channels": conv.out_channels,
            "hidden_dim": self.decoder[0].out_features,
            "latent_hidden_dim": self.high_encoder[0].out_features,
            "dropout": self.decoder[2].p,
        }


def log_standard_normal(z: torch.Tensor) -> torch.Tensor:
    """Return log N(z; 0, I) summed over the last axis, in nats."""
    return -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(-1)


def load_vae_checkpoint(path, map_location="cpu"):
    """Load a checkpoint written by ``problem2/train.py``; return (model in eval mode, checkpoint dict).

    The checkpoint contains ``model_state``, ``model_args`` (constructor keyword
    arguments), ``config`` and ``epoch``. A missing file raises FileNotFoundError
    with the command that trains the model.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: train the model first with {TRAIN_COMMAND}")
    checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    for key in ("model_state", "model_args"):
        if key not in checkpoint:
            raise ValueError(f"{path} is not a drum VAE checkpoint: key {key!r} is missing")
    model = HierarchicalDrumVAE(**checkpoint["model_args"])
    model.load_state_dict(checkpoint["model_state"])
    if isinstance(map_location, (str, torch.device)):
        model.to(map_location)
    model.eval()
    return model, checkpoint
