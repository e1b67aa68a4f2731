"""Network architectures as plain layer lists, read by the integer builder and the fp32 twin.

One description per model keeps the NITI network and its fp32 baseline the same architecture.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Conv:
    out_channels: int
    kernel: int
    stride: int = 1
    padding: int = 0


@dataclass(frozen=True)
class Pool:
    kernel: int
    stride: int | None = None


@dataclass(frozen=True)
class Relu:
    pass


@dataclass(frozen=True)
class Flat:
    pass


@dataclass(frozen=True)
class Fc:
    out_features: int


@dataclass(frozen=True)
class ModelSpec:
    """Layers plus the input they were designed for and the default m_u schedule.

    The last Fc layer is sized to the dataset's number of classes when the network is built.
    """

    name: str
    layers: tuple
    input_shape: tuple[int, int, int]  # H, W, C
    mu_schedule: tuple[tuple[int, int], ...]
    note: str = ""


def vgg_features(config) -> list:
    """VGG feature layers: 3x3 convolutions (padding 1) with ReLU, 'M' for 2x2 max-pooling."""
    layers = []
    for item in config:
        layers += [Pool(2)] if item == "M" else [Conv(item, 3, padding=1), Relu()]
    return layers


VGG_CONFIGS = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"],
    "vgg-small-7": [128, 128, "M", 256, 256, "M", 512, 512, "M"],
    "vgg-small-8": [128, 128, 128, "M", 256, 256, "M", 512, 512, "M"],
    "vgg-small-9": [128, 128, 128, "M", 256, 256, 256, "M", 512, 512, "M"],
}
CIFAR_SCHEDULE = ((0, 5), (100, 4), (150, 3))  # the reference code's regime for VGG

MODELS: dict[str, ModelSpec] = {
    "lenet5": ModelSpec(
        "lenet5",
        (Conv(20, 5), Relu(), Pool(2), Conv(50, 5), Relu(), Pool(2), Flat(), Fc(500), Relu(),
         Fc(10)),
        (28, 28, 1), ((0, 5), (2, 4), (5, 3), (8, 2)),
        "LeNet-5 as the NITI reference code trains it (Caffe variant: 20-50-500-10)",
    ),
    **{
        name: ModelSpec(name, tuple(vgg_features(config) + [Flat(), Fc(10)]), (32, 32, 3),
                        CIFAR_SCHEDULE, "CIFAR-10 VGG without batch norm, one linear layer")
        for name, config in VGG_CONFIGS.items()
    },
    "small-cnn": ModelSpec(
        "small-cnn",
        (Conv(8, 3), Relu(), Pool(2), Conv(16, 3), Relu(), Pool(2), Flat(), Fc(10)),
        (16, 16, 1), ((0, 5), (2, 4), (5, 3), (8, 2)),
        "conv-ReLU-pool twice and one linear layer, for 16x16 MNIST: the CNN the RTL core is "
        "sized to train within an ECP5-45F's block RAM",
    ),
    "alexnet": ModelSpec(
        "alexnet",
        (Conv(64, 11, 4, 2), Relu(), Pool(3, 2), Conv(192, 5, padding=2), Relu(), Pool(3, 2),
         Conv(384, 3, padding=1), Relu(), Conv(256, 3, padding=1), Relu(),
         Conv(256, 3, padding=1), Relu(), Pool(3, 2), Flat(), Fc(4096), Relu(), Fc(4096), Relu(),
         Fc(1000)),
        (224, 224, 3), ((0, 3),),
        "AlexNet for ImageNet (no dropout, no local response norm)",
    ),
}


def get_model(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}")
    return MODELS[name]
