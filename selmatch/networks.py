"""The networks of the paper: ConvNet (distillation, experts) and ResNet-18-BN (evaluation).

Every model has ``embed(x)`` (the penultimate features, used by coverage) and ``forward(x) =
classifier(embed(x))``. Build one by name with :func:`build_model`; width and depth can be overridden
so the ``cpu`` profile can use smaller nets than the paper's.
"""
from __future__ import annotations

from functools import partial

import torch
from torch import nn
import torch.nn.functional as F

from .fast.fastgrad import BatchNorm, InstanceNorm, affine_of, block, conv_block
from .fast.recompute import recomputed

NORMS = ("instance", "batch", "none")


def _norm(kind: str, channels: int) -> nn.Module:
    # The official "instancenorm" (one group per channel, affine) and BatchNorm, both computed by
    # selmatch.fast.fastgrad: the same values and parameters, a cheaper second derivative for the unroll.
    if kind == "instance":
        return InstanceNorm(channels)
    if kind == "batch":
        return BatchNorm(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm={kind!r} is unknown; valid: {', '.join(NORMS)}")


class _BlockFn:
    """One ConvNet block as a pure function of its input and parameters, for :func:`recomputed`: the same
    :func:`selmatch.fast.fastgrad.block`, with BatchNorm's running statistics updated by the first call
    only (the forward), never by the recomputations (in training mode the output uses batch statistics,
    so recomputations agree)."""

    def __init__(self, norm: nn.Module):
        self.norm, self.fresh = norm, True

    def __call__(self, h, w, b, *affine):
        out = block(h, w, b, self.norm, affine, update_stats=self.fresh)
        self.fresh = False
        return out


class ConvNet(nn.Module):
    """``depth`` blocks of [3x3 conv (``width`` channels) -> norm -> ReLU -> 2x2 average pool], then a
    linear head on the flattened features.

    ``recompute_blocks = k`` (default 0) runs the first ``k`` blocks through
    :func:`selmatch.fast.recompute.recomputed` whenever autograd is recording: the same values and gradients,
    with only each block's input kept for the backward passes. ``DistillConfig(memory="recompute")`` sets
    it to 1, which cuts the memory of a twice-differentiated unroll step by about two thirds."""

    def __init__(self, channels: int, num_classes: int, image_size: int, width: int = 128, depth: int = 3,
                 norm: str = "instance"):
        super().__init__()
        if depth < 1 or image_size >> depth < 1:
            raise ValueError(f"depth={depth} must be >= 1 and leave at least 1 pixel of an "
                             f"{image_size}x{image_size} image (valid: 1..{image_size.bit_length() - 1})")
        layers, c = [], channels
        for _ in range(depth):
            layers += [nn.Conv2d(c, width, 3, padding=1), _norm(norm, width), nn.ReLU(inplace=True),
                       nn.AvgPool2d(2, 2)]
            c = width
        self.body = nn.Sequential(*layers)
        side = image_size >> depth
        self.classifier = nn.Linear(width * side * side, num_classes)
        self.depth, self.recompute_blocks = depth, 0

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        grad = torch.is_grad_enabled()
        k = min(self.recompute_blocks, self.depth) if grad else 0
        for i in range(self.depth):
            conv, norm = self.body[4 * i:4 * i + 2]     # ReLU and pool are part of the block (fastgrad.block)
            if i < k:
                x = recomputed(_BlockFn(norm), x, conv.weight, conv.bias, *affine_of(norm))
            else:
                x = conv_block(x, conv, norm, ask_input_grad=i == 0)
        return x.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18BN(nn.Module):
    """ResNet-18 with BatchNorm: 3x3 stem (stride 1 for 32x32, 2 for TinyImageNet), no max-pool,
    four stages of two basic blocks with ``width * (1, 2, 4, 8)`` channels, global average pool."""

    # selmatch.train trains it in channels-last memory in eager mode: 33 -> 42 img/s on 2 cores (the
    # BatchNorm ConvNet gets slower that way, and under torch.compile the default layout is faster).
    channels_last = True

    def __init__(self, channels: int, num_classes: int, image_size: int, width: int = 64, stem_stride: int = 1):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(channels, width, 3, stem_stride, 1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        stages, c = [], width
        for i, mult in enumerate((1, 2, 4, 8)):
            stride = 1 if i == 0 else 2
            stages += [BasicBlock(c, width * mult, stride), BasicBlock(width * mult, width * mult, 1)]
            c = width * mult
        self.stages = nn.Sequential(*stages)
        self.classifier = nn.Linear(c, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(self.stages(self.stem(x)), 1).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


MODELS = {
    "convnet": partial(ConvNet, width=128, depth=3, norm="instance"),
    "convnet_bn": partial(ConvNet, width=128, depth=3, norm="batch"),
    "convnet_nonorm": partial(ConvNet, width=128, depth=3, norm="none"),
    "convnet_d4": partial(ConvNet, width=128, depth=4, norm="instance"),
    "convnet_d4_bn": partial(ConvNet, width=128, depth=4, norm="batch"),
    "resnet18_bn": partial(ResNet18BN, width=64, stem_stride=1),
    "resnet18_bn_tiny": partial(ResNet18BN, width=64, stem_stride=2),
}


def for_image_size(model: str, depth: int | None, image_size: int) -> tuple[str, int | None]:
    """``(model, depth)`` as the paper uses them on images of ``image_size`` pixels: on 64x64 images
    (TinyImageNet) ConvNet gets a fourth block (ConvNetD4) and ResNet-18 its stride-2 stem. The one place
    this rule is written; :mod:`selmatch.settings` applies it to every network a profile trains."""
    if image_size >= 64:
        if model == "resnet18_bn":
            return "resnet18_bn_tiny", depth
        if model.startswith("convnet") and depth is None:
            return model, 4
    return model, depth


def build_model(name: str, channels: int, num_classes: int, image_size: int, *, width: int | None = None,
                depth: int | None = None) -> nn.Module:
    """Instantiate registry model ``name``; ``width``/``depth`` override the paper's defaults."""
    if name not in MODELS:
        raise ValueError(f"model={name!r} is unknown; valid: {', '.join(MODELS)}")
    overrides = {}
    if width is not None:
        if width < 1:
            raise ValueError(f"width={width} must be >= 1")
        overrides["width"] = width
    if depth is not None:
        if MODELS[name].func is not ConvNet:
            raise ValueError(f"depth={depth} can only be set for ConvNet models, not {name!r}")
        overrides["depth"] = depth
    return MODELS[name](channels, num_classes, image_size, **overrides)
