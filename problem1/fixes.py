"""Remedies for GAN mode collapse, each a drop-in change to the generator's objective.

    python problem1/train.py --experiment fixed --fix feature_matching

A remedy plugs into ``training_dynamics.train_gan``. Before the optimizers
exist, the loop calls ``remedy.prepare_discriminator(D)``. Then, for each
batch, it updates D once with the standard BCE loss and G once with
``remedy.generator_loss(...)``. ``make_remedy`` builds a remedy by name.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.func import functional_call

from problem1.training_dynamics import discriminator_loss_from_logits, generator_nonsaturating_loss, train_gan


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


class _LogitsView(nn.Module):
    """Wrap a discriminator so that ``forward`` is its ``logits`` method.

    ``torch.func.functional_call`` always calls ``forward``; this view lets it
    evaluate the logits with substituted parameters. Parameter names gain the
    prefix ``"discriminator."``.
    """

    def __init__(self, discriminator: nn.Module):
        super().__init__()
        self.discriminator = discriminator

    def forward(self, images: Tensor, class_label: Tensor | None) -> Tensor:
        return self.discriminator.logits(images, class_label)


class UnrolledGAN(Remedy):
    """Unrolled GAN (Metz et al. 2016, "Unrolled Generative Adversarial Networks").

    The generator's loss is the non-saturating loss against a surrogate
    discriminator: a copy of D advanced ``unroll_steps`` optimizer steps on
    the current real batch and the current generated batch, with the
    discriminator loss ``training_dynamics.discriminator_loss_from_logits``.
    The real D keeps its single update per batch in the training loop.

    The surrogate is a dict of parameter tensors evaluated with
    ``torch.func.functional_call``, so no module is copied. It starts from a
    detached clone of D's parameters and of the optimizer's Adam moments, so
    D's weights, its ``.grad`` fields and ``d_optimizer.state`` stay unchanged.

    Options:
        unroll_steps: k >= 1, the number of lookahead steps. The cost of a
            generator update grows about linearly with k.
        differentiate_through_unroll: True (default) lets the generator's
            gradient flow through the k lookahead steps (``create_graph=True``).
            The generator then accounts for how D would react to its samples,
            the term Metz et al. credit with countering mode collapse. False
            gives the first-order variant: the surrogate is a constant, and the
            generator only trains against a D that is k steps further along.
            It is cheaper (no second-order graph) but drops that term.
        lookahead_optimizer: "adam" (default) repeats ``d_optimizer``'s own
            Adam or AdamW update, with its learning rate, betas, eps, weight
            decay and current moment estimates, so the surrogate forecasts what
            D's real updates would do. The reference code published with the
            paper (github.com/poolio/unrolled_gan) also unrolls the
            discriminator's own Adam optimizer. A plain "sgd" step at D's
            learning rate (2e-4 for the letters) moves D far less than Adam's
            normalised steps, so the surrogate would barely differ from D.
            "sgd" ignores momentum and weight decay.
        lookahead_lr: the learning rate of the lookahead steps. None (default)
            uses each parameter group's learning rate in ``d_optimizer``.

    Randomness: the surrogate runs D in D's current mode. In training mode,
    every lookahead step and the final evaluation draw fresh Dropout2d masks,
    as k real updates would. The lookahead draws from torch's global random
    generator, so a seeded run is reproducible, but its random stream differs
    from a vanilla run's.
    """

    name = "unrolled"
    LOOKAHEAD_OPTIMIZERS = ("adam", "sgd")

    def __init__(
        self,
        unroll_steps: int = 5,
        differentiate_through_unroll: bool = True,
        lookahead_optimizer: str = "adam",
        lookahead_lr: float | None = None,
    ):
        if isinstance(unroll_steps, bool) or not isinstance(unroll_steps, int) or unroll_steps < 1:
            raise ValueError(f"invalid unroll_steps {unroll_steps!r}: expected an integer >= 1")
        if lookahead_optimizer not in self.LOOKAHEAD_OPTIMIZERS:
            raise ValueError(
                f"invalid lookahead_optimizer {lookahead_optimizer!r}: "
                f"choose one of {', '.join(self.LOOKAHEAD_OPTIMIZERS)}"
            )
        if lookahead_lr is not None and not lookahead_lr > 0:
            raise ValueError(f"invalid lookahead_lr {lookahead_lr!r}: expected a positive float or None")
        self.unroll_steps = unroll_steps
        self.differentiate_through_unroll = bool(differentiate_through_unroll)
        self.lookahead_optimizer = lookahead_optimizer
        self.lookahead_lr = lookahead_lr

    def generator_loss(self, *, generator, discriminator, real_images, z, class_label, d_optimizer):
        fake_images = generator(z, class_label)
        surrogate_params, lookahead_losses = self.unroll(
            discriminator, d_optimizer, real_images, fake_images, class_label, discriminator_loss_from_logits
        )
        fake_logits = functional_call(_LogitsView(discriminator), surrogate_params, (fake_images, class_label))
        loss = generator_nonsaturating_loss(fake_logits)
        stats = {
            "lookahead_d_loss_first": lookahead_losses[0],
            "lookahead_d_loss_last": lookahead_losses[-1],
        }
        return loss, stats

    def unroll(self, discriminator, d_optimizer, real_images, fake_images, class_label, d_loss_fn):
        """Advance a functional copy of D by ``unroll_steps`` steps; D and ``d_optimizer`` stay unchanged.

        Returns ``(params, losses)``: ``params`` maps ``"discriminator.<name>"``
        to the surrogate's tensors (plus D's buffers), ready for
        ``functional_call(_LogitsView(discriminator), params, ...)``, and
        ``losses`` lists the D loss (float) before each lookahead step. In the
        first-order mode the returned tensors are detached.
        """
        view = _LogitsView(discriminator)
        create_graph = self.differentiate_through_unroll
        if not create_graph:
            fake_images = fake_images.detach()

        params = {name: param.detach().clone().requires_grad_(True) for name, param in discriminator.named_parameters()}
        buffers = {f"discriminator.{name}": buffer for name, buffer in discriminator.named_buffers()}
        optimizer_state = _LookaheadOptimizerState(
            discriminator, d_optimizer, self.lookahead_optimizer, self.lookahead_lr
        )
        trainable = [name for name in params if optimizer_state.updates(name)]

        losses = []
        for _ in range(self.unroll_steps):
            current = {f"discriminator.{name}": tensor for name, tensor in params.items()}
            current.update(buffers)
            real_logits = functional_call(view, current, (real_images, class_label))
            fake_logits = functional_call(view, current, (fake_images, class_label))
            loss = d_loss_fn(real_logits, fake_logits)
            losses.append(loss.item())

            grads = torch.autograd.grad(
                loss, [params[name] for name in trainable], create_graph=create_graph, allow_unused=True
            )
            # With create_graph the update itself joins the graph; otherwise it is a constant.
            with torch.set_grad_enabled(create_graph):
                updated = {name: optimizer_state.step(name, params[name], grad) for name, grad in zip(trainable, grads)}
            if not create_graph:
                updated = {name: tensor.detach().requires_grad_(True) for name, tensor in updated.items()}
            params.update(updated)

        surrogate = {f"discriminator.{name}": tensor for name, tensor in params.items()}
        if not create_graph:
            surrogate = {key: tensor.detach() for key, tensor in surrogate.items()}
        surrogate.update(buffers)
        return surrogate, losses

    def __repr__(self) -> str:
        return (
            f"UnrolledGAN(unroll_steps={self.unroll_steps}, "
            f"differentiate_through_unroll={self.differentiate_through_unroll}, "
            f"lookahead_optimizer={self.lookahead_optimizer!r}, lookahead_lr={self.lookahead_lr!r})"
        )


class _LookaheadOptimizerState:
    """Per-parameter optimizer state for the lookahead, cloned from ``d_optimizer``.

    The update is written out of place so that, when the caller builds a
    graph, the new parameters stay differentiable functions of the old ones.
    Parameters that ``d_optimizer`` does not train stay constant.
    """

    def __init__(self, discriminator, d_optimizer, kind: str, lr_override: float | None):
        if d_optimizer is None:
            raise ValueError("UnrolledGAN needs the discriminator's optimizer: pass d_optimizer")
        if kind == "adam" and not isinstance(d_optimizer, torch.optim.Adam):
            raise ValueError(
                f"lookahead_optimizer='adam' mirrors an Adam or AdamW d_optimizer, "
                f"got {type(d_optimizer).__name__}: use lookahead_optimizer='sgd'"
            )
        self.kind = kind
        group_by_param = {id(param): group for group in d_optimizer.param_groups for param in group["params"]}
        self.settings = {}
        self.moments = {}
        for name, param in discriminator.named_parameters():
            group = group_by_param.get(id(param))
            if group is None:
                continue
            lr = float(lr_override if lr_override is not None else group["lr"])
            if kind == "sgd":
                self.settings[name] = {"lr": lr}
                continue
            if group.get("maximize", False):
                raise ValueError("lookahead_optimizer='adam' does not support maximize=True in d_optimizer")
            beta1, beta2 = (float(beta) for beta in group["betas"])
            decoupled = bool(group.get("decoupled_weight_decay", isinstance(d_optimizer, torch.optim.AdamW)))
            self.settings[name] = {
                "lr": lr, "beta1": beta1, "beta2": beta2, "eps": float(group["eps"]),
                "weight_decay": float(group["weight_decay"]), "decoupled": decoupled,
                "amsgrad": bool(group.get("amsgrad", False)),
            }
            state = d_optimizer.state.get(param, {})
            zeros = torch.zeros_like(param, memory_format=torch.preserve_format).detach()
            self.moments[name] = {
                "step": float(state["step"]) if "step" in state else 0.0,
                "exp_avg": state["exp_avg"].detach().clone() if "exp_avg" in state else zeros.clone(),
                "exp_avg_sq": state["exp_avg_sq"].detach().clone() if "exp_avg_sq" in state else zeros.clone(),
                "max_exp_avg_sq": (
                    state["max_exp_avg_sq"].detach().clone() if "max_exp_avg_sq" in state else zeros.clone()
                ),
            }

    def updates(self, name: str) -> bool:
        """Return whether the lookahead trains the parameter ``name``."""
        return name in self.settings

    def step(self, name: str, param: Tensor, grad: Tensor | None) -> Tensor:
        """Return the parameter after one update (``param`` itself for a frozen or unused one)."""
        if name not in self.settings or grad is None:
            return param
        settings = self.settings[name]
        if self.kind == "sgd":
            return param - settings["lr"] * grad

        # One torch.optim.Adam step (the default, non-fused algorithm), written out of place.
        moments = self.moments[name]
        moments["step"] += 1.0
        step = moments["step"]
        if settings["weight_decay"] != 0.0:
            if settings["decoupled"]:
                param = param * (1.0 - settings["lr"] * settings["weight_decay"])
            else:
                grad = grad + settings["weight_decay"] * param
        exp_avg = settings["beta1"] * moments["exp_avg"] + (1.0 - settings["beta1"]) * grad
        exp_avg_sq = settings["beta2"] * moments["exp_avg_sq"] + (1.0 - settings["beta2"]) * grad * grad
        moments["exp_avg"] = exp_avg
        moments["exp_avg_sq"] = exp_avg_sq
        if settings["amsgrad"]:
            exp_avg_sq = torch.maximum(moments["max_exp_avg_sq"], exp_avg_sq)
            moments["max_exp_avg_sq"] = exp_avg_sq

        bias_correction1 = 1.0 - settings["beta1"] ** step
        bias_correction2 = 1.0 - settings["beta2"] ** step
        # clamp_min keeps the second-order gradient finite where a gradient is exactly 0
        # (d sqrt(v)/dv is infinite at v = 0); it changes the value by at most 1e-19.
        root = exp_avg_sq.clamp_min(torch.finfo(exp_avg_sq.dtype).tiny).sqrt()
        denominator = root / math.sqrt(bias_correction2) + settings["eps"]
        return param - (settings["lr"] / bias_correction1) * exp_avg / denominator


# Statistics that pool a sample's closeness to the others in MinibatchDiscriminationLayer.
MINIBATCH_STATISTICS = ("mean", "sum")


class MinibatchDiscriminationLayer(nn.Module):
    """Minibatch discrimination (Salimans et al. 2016, "Improved Techniques for Training GANs", section 3.2).

    For features f(x_i) in R^A (input [N, A]) and a learned tensor T of shape
    [A, B*C], each sample gets M_i = f(x_i) T reshaped to [B, C]. Kernel b
    compares two samples by c_b(x_i, x_j) = exp(-||M_{i,b} - M_{j,b}||_1).
    The paper's statistic is o(x_i)_b = sum over j != i of c_b(x_i, x_j)
    (``statistic="sum"``). ``statistic="mean"`` divides that sum by N - 1, so
    o lies in [0, 1] whatever the batch size. The output is
    concat(f(x_i), o(x_i)), shape [N, A + B].

    The sum excludes j = i: that term is exp(0) = 1 for every sample and
    carries no information. So a batch of identical samples gets o_b = N - 1
    (sum) or 1 (mean), and samples far apart in every kernel get o_b near 0.
    A batch of one sample gets o = 0.

    T starts from N(0, init_scale^2 / A). The default init_scale of 0.1
    makes every pair's closeness start near 1, so the statistics start out
    uninformative and D learns how far to scale T. The authors' code instead
    uses weight normalisation with a data-dependent rescaling, which this
    layer leaves out.
    """

    def __init__(self, in_features: int, num_kernels: int = 100, kernel_dim: int = 5, init_scale: float = 0.1,
                 statistic: str = "mean"):
        super().__init__()
        if not init_scale > 0:
            raise ValueError(f"invalid init_scale {init_scale!r}: expected a positive float")
        if statistic not in MINIBATCH_STATISTICS:
            raise ValueError(f"invalid statistic {statistic!r}: choose one of {', '.join(MINIBATCH_STATISTICS)}")
        for option, value in (("in_features", in_features), ("num_kernels", num_kernels), ("kernel_dim", kernel_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"invalid {option} {value!r}: expected an integer >= 1")
        self.in_features = in_features
        self.num_kernels = num_kernels
        self.kernel_dim = kernel_dim
        self.statistic = statistic
        self.T = nn.Parameter(torch.randn(in_features, num_kernels * kernel_dim) * (init_scale / math.sqrt(in_features)))

    @property
    def out_features(self) -> int:
        return self.in_features + self.num_kernels

    def closeness(self, features: Tensor) -> Tensor:
        """Return o(x), the closeness to the other samples summed or averaged over them: [N, A] -> [N, B]."""
        if features.dim() != 2 or features.shape[1] != self.in_features:
            raise ValueError(
                f"MinibatchDiscriminationLayer expected input [N, {self.in_features}], got {list(features.shape)}"
            )
        batch_size = features.shape[0]
        kernels = (features @ self.T).view(batch_size, self.num_kernels, self.kernel_dim)
        # [B, N, C] -> pairwise L1 distances per kernel, [B, N, N]
        per_kernel = kernels.transpose(0, 1)
        distances = torch.cdist(per_kernel, per_kernel, p=1.0)
        similarity = torch.exp(-distances)
        not_self = 1.0 - torch.eye(batch_size, dtype=similarity.dtype, device=similarity.device)
        summed = (similarity * not_self).sum(dim=2).transpose(0, 1)
        if self.statistic == "mean":
            return summed / max(1, batch_size - 1)
        return summed

    def forward(self, features: Tensor) -> Tensor:
        return torch.cat([features, self.closeness(features)], dim=1)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, num_kernels={self.num_kernels}, kernel_dim={self.kernel_dim}, "
                f"statistic={self.statistic!r}")


class MinibatchDiscriminationHead(nn.Module):
    """Discriminator head [N, A] -> logits [N, 1]: the minibatch layer, then a linear layer or a small MLP.

    With ``hidden_features`` = 0 the logit is linear in the closeness
    statistics, as in the paper, so D can only score "closer together" as
    uniformly more real or more fake. When real batches are themselves
    tightly clustered (2-D mixtures with small modes), a D trained against
    diffuse fakes learns "closer is more real", and that rewards a generator
    that collapses. A hidden layer (Linear, LeakyReLU 0.2, Linear) lets D prefer
    the closeness that real batches have.
    """

    def __init__(self, in_features: int, num_kernels: int = 100, kernel_dim: int = 5, init_scale: float = 0.1,
                 statistic: str = "mean", hidden_features: int = 64):
        super().__init__()
        if isinstance(hidden_features, bool) or not isinstance(hidden_features, int) or hidden_features < 0:
            raise ValueError(f"invalid hidden_features {hidden_features!r}: expected an integer >= 0")
        self.minibatch = MinibatchDiscriminationLayer(in_features, num_kernels, kernel_dim, init_scale, statistic)
        if hidden_features == 0:
            self.output = nn.Linear(self.minibatch.out_features, 1)
        else:
            self.output = nn.Sequential(
                nn.Linear(self.minibatch.out_features, hidden_features),
                nn.LeakyReLU(0.2),
                nn.Linear(hidden_features, 1),
            )

    def forward(self, features: Tensor) -> Tensor:
        return self.output(self.minibatch(features))


class MinibatchDiscrimination(Remedy):
    """Minibatch discrimination as a remedy: D gets a measure of how similar the samples of a batch are.

    ``prepare_discriminator`` replaces ``discriminator.classifier`` with a
    ``MinibatchDiscriminationHead`` over the ``classifier_in_features``
    flattened features, so a generated batch that lacks variety is easy to
    spot. Real and generated batches pass through D separately, so the
    statistics compare real with real and fake with fake. The generator keeps
    the non-saturating loss. B = 100 kernels of C = 5 dimensions are the
    values in the authors' released code (openai/improved-gan,
    ``train_cifar_minibatch_discrimination.py``).

    The defaults differ from the paper in two ways, both chosen on the 2-D
    ring of problem1/toy_mixture.py (batch 256, B = 8, C = 4, 2,000 steps,
    both learning rates 1e-3, seeds 0-2): the closeness is averaged rather than summed, and the head
    has a hidden layer. The paper's form (``statistic="sum"``,
    ``hidden_features=0``) covered 1, 0 and 1 of the 8 modes there, and this
    form covered 7, 8 and 7. Summing over 255 other samples puts o in the
    hundreds, which saturates D (with a hidden layer, the sum left almost no
    sample near a mode). A linear head rewarded collapse: after training, a
    batch of 256 copies of one real point got a mean logit of 5.0, near the
    real batch's 6.6 and far above the generated batch's -5.7.

    Resuming a run: call ``prepare_discriminator`` on a fresh D before
    loading its state dict, because the head's parameters are part of it.
    """

    name = "minibatch"

    def __init__(self, num_kernels: int = 100, kernel_dim: int = 5, init_scale: float = 0.1,
                 statistic: str = "mean", hidden_features: int = 64):
        if statistic not in MINIBATCH_STATISTICS:
            raise ValueError(f"invalid statistic {statistic!r}: choose one of {', '.join(MINIBATCH_STATISTICS)}")
        self.num_kernels = num_kernels
        self.kernel_dim = kernel_dim
        self.init_scale = init_scale
        self.statistic = statistic
        self.hidden_features = hidden_features

    def prepare_discriminator(self, discriminator: nn.Module) -> None:
        if isinstance(discriminator.classifier, MinibatchDiscriminationHead):
            return
        reference = next(discriminator.parameters())
        head = MinibatchDiscriminationHead(
            discriminator.classifier_in_features, self.num_kernels, self.kernel_dim, self.init_scale,
            self.statistic, self.hidden_features,
        )
        discriminator.classifier = head.to(device=reference.device, dtype=reference.dtype)

    def generator_loss(self, *, generator, discriminator, real_images, z, class_label, d_optimizer=None):
        if not isinstance(discriminator.classifier, MinibatchDiscriminationHead):
            raise ValueError(
                "the discriminator has no minibatch-discrimination head: "
                "call MinibatchDiscrimination.prepare_discriminator(D) before creating its optimizer"
            )
        fake_logits = discriminator.logits(generator(z, class_label), class_label)
        return generator_nonsaturating_loss(fake_logits), {}

    def __repr__(self) -> str:
        return (
            f"MinibatchDiscrimination(num_kernels={self.num_kernels}, kernel_dim={self.kernel_dim}, "
            f"init_scale={self.init_scale}, statistic={self.statistic!r}, hidden_features={self.hidden_features})"
        )


_REMEDIES = {
    "feature_matching": FeatureMatching,
    "unrolled": UnrolledGAN,
    "minibatch": MinibatchDiscrimination,
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
    remedy = make_remedy(fix_type, **(remedy_options or {}))
    return train_gan(generator, discriminator, data_loader, num_epochs, device, remedy=remedy, **kwargs)
