"""Remedies for GAN mode collapse, each a drop-in change to the generator's objective.

    python problem1/train.py --experiment fixed --fix feature_matching

A remedy plugs into ``training_dynamics.train_gan``. Before the optimizers
exist, the loop calls ``remedy.prepare_discriminator(D)``. Then, for each
batch, it updates D once with the standard BCE loss and G once with
``remedy.generator_loss(...)``. ``make_remedy`` builds a remedy by name.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


class Remedy:
    """Base class: the vanilla interface plus a replaceable generator loss.

    Subclasses set ``name`` and implement ``generator_loss``. A remedy with
    learnable state outside the two networks overrides ``state_dict`` and
    ``load_state_dict`` so that a resumed run restores it.
    """

    name: str = "remedy"

    def prepare_discriminator(self, discriminator: nn.Module) -> None:
        """Change the discriminator's structure before its optimizer is created (default: no change)."""

    def generator_loss(
        self,
        *,
        generator: nn.Module,
        discriminator: nn.Module,
        real_images: Tensor,
        z: Tensor,
        class_label: Tensor | None,
        d_optimizer: torch.optim.Optimizer,
    ) -> tuple[Tensor, dict]:
        """Return the scalar loss the generator minimises and a dict of floats to log.

        real_images: [B, ...] in [-1, 1]; z: [B, z_dim]; class_label: one-hot
        [B, num_classes] or None for an unconditional GAN.
        """
        raise NotImplementedError(f"{type(self).__name__} does not define generator_loss")

    def state_dict(self) -> dict:
        """Return learnable state kept outside the networks (none by default)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` returned; a remedy without state accepts only an empty dict."""
        if state:
            raise ValueError(f"{type(self).__name__} has no state to load, got keys {sorted(state)}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class FeatureMatching(Remedy):
    """Feature matching (Salimans et al. 2016, "Improved Techniques for Training GANs", section 3.1).

    The generator minimises ``|| mean_x f(x) - mean_z f(G(z)) ||_2^2``, the
    squared L2 distance between the batch means of an intermediate
    discriminator layer ``f`` on a real and a generated batch. The layer is
    the one ``discriminator.feature_matching_features(img, class_label)``
    returns ([B, F]); the discriminator module documents which layer that is.
    The real features are a target, so they carry no gradient. The
    discriminator itself keeps training with the ordinary BCE loss.

    ``reduction="sum"`` is the squared norm as the paper writes it;
    ``"mean"`` divides it by F. Adam, the optimizer this project uses, is
    nearly invariant to that constant factor.
    """

    name = "feature_matching"

    def __init__(self, reduction: str = "sum"):
        if reduction not in ("sum", "mean"):
            raise ValueError(f"invalid reduction {reduction!r}: choose 'sum' or 'mean'")
        self.reduction = reduction

    def generator_loss(self, *, generator, discriminator, real_images, z, class_label, d_optimizer=None):
        with torch.no_grad():
            real_mean = discriminator.feature_matching_features(real_images, class_label).mean(dim=0)
        fake_images = generator(z, class_label)
        fake_mean = discriminator.feature_matching_features(fake_images, class_label).mean(dim=0)

        squared_difference = (real_mean - fake_mean).pow(2)
        loss = squared_difference.sum() if self.reduction == "sum" else squared_difference.mean()
        return loss, {"feature_distance": loss.item()}

    def __repr__(self) -> str:
        return f"FeatureMatching(reduction={self.reduction!r})"


_REMEDIES = {
    "feature_matching": FeatureMatching,
}
# Names accepted by make_remedy and by the --fix option of the training script.
FIX_CHOICES = tuple(_REMEDIES)


def make_remedy(fix_type: str, **options) -> Remedy:
    """Build the remedy named ``fix_type`` with keyword ``options`` passed to its constructor.

    Raises ValueError for an unknown name, listing the valid ones.
    """
    if fix_type not in _REMEDIES:
        raise ValueError(f"unknown fix_type {fix_type!r}: choose one of {', '.join(FIX_CHOICES)}")
    return _REMEDIES[fix_type](**options)


def train_gan_with_fix(
    generator,
    discriminator,
    data_loader,
    num_epochs: int = 100,
    device="cpu",
    fix_type: str = "feature_matching",
    remedy_options: dict | None = None,
    **kwargs,
) -> dict:
    """Train a GAN with the remedy ``fix_type`` and return ``train_gan``'s history dict.

    ``remedy_options`` go to the remedy's constructor (for example
    ``{"unroll_steps": 3}``); every other keyword argument goes to
    ``training_dynamics.train_gan``.
    """
    # Imported here so that the training loop may import this module at load time.
    from problem1.training_dynamics import train_gan

    remedy = make_remedy(fix_type, **(remedy_options or {}))
    return train_gan(generator, discriminator, data_loader, num_epochs, device, remedy=remedy, **kwargs)
