"""DCGAN generator and discriminator for 28x28 letter images, optionally conditioned on the letter.

Images are [B, 1, 28, 28] in [-1, 1]. Labels are the letter index 0-25 (A-Z),
given either as int64 indices [B] or as one-hot float rows [B, 26].

Weights start as in DCGAN (Radford et al. 2016, "Unsupervised Representation
Learning with Deep Convolutional GANs", section 4): convolution and linear
weights from N(0, 0.02), BatchNorm scales from N(1, 0.02), biases at zero.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

NUM_LETTERS = 26
IMAGE_SIZE = 28


def init_dcgan_weights(module: nn.Module) -> None:
    """Initialise one module in place as DCGAN does; use with ``model.apply``."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def one_hot_labels(class_label: Tensor, num_classes: int = NUM_LETTERS) -> Tensor:
    """Return class labels as one-hot float rows [B, num_classes].

    Accepts int64 indices [B] or rows that are already [B, num_classes]
    (returned as float). Raises ValueError for any other shape or an index
    outside [0, num_classes).
    """
    if class_label.dim() == 1 and not class_label.is_floating_point():
        if class_label.numel() and (class_label.min() < 0 or class_label.max() >= num_classes):
            raise ValueError(
                f"class index out of range: got min {int(class_label.min())}, "
                f"max {int(class_label.max())}, expected 0..{num_classes - 1}"
            )
        return F.one_hot(class_label, num_classes).float()
    if class_label.dim() == 2 and class_label.shape[1] == num_classes:
        return class_label.float()
    raise ValueError(
        f"class_label must be int64 indices [B] or one-hot rows [B, {num_classes}], "
        f"got dtype {class_label.dtype} and shape {list(class_label.shape)}"
    )


def _checked_labels(class_label: Tensor | None, conditional: bool, batch_size: int, num_classes: int, owner: str):
    """Validate ``class_label`` against the model's mode and return one-hot rows or None."""
    if not conditional:
        if class_label is not None:
            raise ValueError(f"unconditional {owner} got a class_label: build it with conditional=True")
        return None
    if class_label is None:
        raise ValueError(f"conditional {owner} needs class_label (int64 [B] or one-hot [B, {num_classes}])")
    labels = one_hot_labels(class_label, num_classes)
    if labels.shape[0] != batch_size:
        raise ValueError(f"{owner} got {labels.shape[0]} labels for a batch of {batch_size}")
    return labels


class Generator(nn.Module):
    """DCGAN generator: z [B, z_dim] (plus a one-hot letter when conditional) -> image [B, 1, 28, 28] in [-1, 1].

    Linear projection to 128x7x7, then two transposed convolutions
    (7 -> 14 with 64 channels, 14 -> 28 with 1 channel), with BatchNorm and
    ReLU after every layer except the tanh output.
    """

    def __init__(self, z_dim: int = 100, conditional: bool = False, num_classes: int = NUM_LETTERS):
        super().__init__()
        if z_dim <= 0:
            raise ValueError(f"z_dim must be positive, got {z_dim}")
        self.z_dim = z_dim
        self.conditional = conditional
        self.num_classes = num_classes
        input_dim = z_dim + (num_classes if conditional else 0)

        self.project = nn.Sequential(
            nn.Linear(input_dim, 128 * 7 * 7),
            nn.BatchNorm1d(128 * 7 * 7),
            nn.ReLU(inplace=True),
        )
        self.upsample = nn.Sequential(
            nn.ConvTranspose2d(128, 64, kernel_size=4, stride=2, padding=1),  # 7x7 -> 14x14
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(64, 1, kernel_size=4, stride=2, padding=1),  # 14x14 -> 28x28
            nn.Tanh(),
        )
        self.apply(init_dcgan_weights)

    def forward(self, z: Tensor, class_label: Tensor | None = None) -> Tensor:
        """Map z [B, z_dim] (and class_label when conditional) to images [B, 1, 28, 28] in [-1, 1]."""
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must be [B, {self.z_dim}], got shape {list(z.shape)}")
        labels = _checked_labels(class_label, self.conditional, z.shape[0], self.num_classes, "Generator")
        if labels is not None:
            z = torch.cat([z, labels.to(z.dtype)], dim=1)
        hidden = self.project(z).view(-1, 128, 7, 7)
        return self.upsample(hidden)


class Discriminator(nn.Module):
    """DCGAN discriminator: image [B, 1, 28, 28] in [-1, 1] -> probability of real [B, 1].

    ``features`` maps the input to [B, 256, 3, 3] through three strided
    convolutions (28 -> 14 -> 7 -> 3 with 64, 128 and 256 channels), each
    followed by LeakyReLU(0.2) and Dropout2d(0.25). ``classifier`` is a linear
    layer from the flattened features [B, 2304] to one logit [B, 1]; the
    minibatch-discrimination remedy swaps it for its own module.

    There is no BatchNorm here: the training loop passes real and generated
    images through the network as one batch, and batch statistics would mix
    the two halves. When conditional, the one-hot letter enters as 26
    constant 28x28 input channels, so every convolution receives the label.
    """

    def __init__(self, conditional: bool = False, num_classes: int = NUM_LETTERS):
        super().__init__()
        self.conditional = conditional
        self.num_classes = num_classes
        in_channels = 1 + (num_classes if conditional else 0)

        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, kernel_size=4, stride=2, padding=1),  # 28 -> 14
            nn.LeakyReLU(0.2, inplace=True),
            nn.Dropout2d(0.25),
            nn.Conv2d(64, 128, kernel_size=4, stride=2, padding=1),  # 14 -> 7
            nn.LeakyReLU(0.2, inplace=True),
            nn.Dropout2d(0.25),
            nn.Conv2d(128, 256, kernel_size=4, stride=2, padding=1),  # 7 -> 3
            nn.LeakyReLU(0.2, inplace=True),
            nn.Dropout2d(0.25),
        )
        self.classifier_in_features = 256 * 3 * 3
        self.classifier = nn.Linear(self.classifier_in_features, 1)
        self.apply(init_dcgan_weights)

    def _network_input(self, img: Tensor, class_label: Tensor | None) -> Tensor:
        if img.dim() != 4 or tuple(img.shape[1:]) != (1, IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"img must be [B, 1, {IMAGE_SIZE}, {IMAGE_SIZE}], got shape {list(img.shape)}")
        labels = _checked_labels(class_label, self.conditional, img.shape[0], self.num_classes, "Discriminator")
        if labels is None:
            return img
        label_maps = labels.to(img.dtype)[:, :, None, None].expand(-1, -1, IMAGE_SIZE, IMAGE_SIZE)
        return torch.cat([img, label_maps], dim=1)

    def feature_matching_features(self, img: Tensor, class_label: Tensor | None = None) -> Tensor:
        """Return the flattened output of ``features`` [B, 2304]: the layer feature matching compares.

        This is the last convolutional layer, the representation on which the
        real/fake decision is a single linear map. Matching its batch mean
        makes the generator reproduce the statistics the discriminator
        actually uses, not only low-level stroke statistics of the first layers.
        """
        return self.features(self._network_input(img, class_label)).flatten(1)

    def logits(self, img: Tensor, class_label: Tensor | None = None) -> Tensor:
        """Return the real/fake logit [B, 1] (before the sigmoid)."""
        return self.classifier(self.feature_matching_features(img, class_label))

    def forward(self, img: Tensor, class_label: Tensor | None = None) -> Tensor:
        """Return the probability that each image is real, [B, 1] in (0, 1)."""
        return torch.sigmoid(self.logits(img, class_label))
