"""Training end to end: determinism, bit-exact resume, checkpoints, models, bad input."""

import numpy as np
import pandas as pd
import pytest

from niti_hw.cli import main
from niti_hw.data import Dataset, load_dataset
from niti_hw.golden import QTensor, RoundingPolicy
from niti_hw.models import MODELS, Conv, Fc, Flat, ModelSpec
from niti_hw.train import TrainConfig, Trainer, load_checkpoint, parse_schedule
from niti_hw.train.build import build_network

torch = pytest.importorskip("torch", reason="the fp32 twin needs the 'torch' extra")

STOCHASTIC = dict(activation_mode="stochastic", error_mode="stochastic",
                  gradient_mode="stochastic", loss_mode="stochastic")


@pytest.fixture(scope="module")
def mnist_small():
    return load_dataset("mnist", limit_train=192, limit_test=64)


def random_dataset(shape, classes, n=8, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
    labels = rng.integers(0, classes, n).astype(np.int64)
    return Dataset(images, labels, images[:4], labels[:4], "random", classes)


def weights_of(trainer):
    return [layer.weights.values.copy() for layer in trainer.runs[0].net.weighted_layers]


def test_same_seed_same_weights_other_seed_differs(tmp_path, mnist_small):
    config = TrainConfig(epochs=1, batch_size=64, seed=3)
    first = Trainer(config, tmp_path / "a", progress=False, data=mnist_small)
    first.fit()
    second = Trainer(config, tmp_path / "b", progress=False, data=mnist_small)
    second.fit()
    other = Trainer(TrainConfig(epochs=1, batch_size=64, seed=4), tmp_path / "c",
                    progress=False, data=mnist_small)
    other.fit()
    assert all((a == b).all() for a, b in zip(weights_of(first), weights_of(second)))
    assert any((a != c).any() for a, c in zip(weights_of(first), weights_of(other)))


def test_resume_continues_bit_for_bit(tmp_path, mnist_small):
    config = TrainConfig(epochs=2, batch_size=64, seed=1, **STOCHASTIC)
    straight = Trainer(config, tmp_path / "straight", baseline=True, progress=False,
                       data=mnist_small)
    straight.fit()

    halted = Trainer(TrainConfig(epochs=1, batch_size=64, seed=1, **STOCHASTIC),
                     tmp_path / "halted", baseline=True, progress=False, data=mnist_small)
    halted.fit()
    resumed = Trainer.resume(tmp_path / "halted" / "checkpoint.npz", epochs=2, progress=False,
                             data=mnist_small)
    assert resumed.epoch == 1
    metrics = resumed.fit()

    assert all((a == b).all() for a, b in zip(weights_of(straight), weights_of(resumed)))
    assert (straight.runs[0].policy.lanes.states == resumed.runs[0].policy.lanes.states).all()
    for a, b in zip(straight.runs[1].model.parameters(), resumed.runs[1].model.parameters()):
        assert torch.equal(a, b)
    assert metrics.epoch.tolist() == [0, 0, 1, 1]
    saved = pd.read_csv(tmp_path / "halted" / "metrics.csv")
    assert saved.test_accuracy.tolist() == straight.metrics.test_accuracy.tolist()


def test_outputs_are_written_and_an_old_run_is_not_overwritten(tmp_path, mnist_small):
    trainer = Trainer(TrainConfig(epochs=1), tmp_path, progress=False, data=mnist_small)
    metrics = trainer.fit()
    assert {"run", "epoch", "m_u", "train_loss", "test_accuracy", "images_per_s"} <= set(metrics)
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    before = (tmp_path / "checkpoint.npz").read_bytes()
    again = Trainer(TrainConfig(epochs=1), tmp_path, progress=False, data=mnist_small)
    with pytest.raises(ValueError, match="already holds a run.*--resume"):
        again.check_fresh_output()
    assert (tmp_path / "checkpoint.npz").read_bytes() == before


def test_damaged_checkpoint_is_refused_and_left_alone(tmp_path, mnist_small):
    Trainer(TrainConfig(epochs=1), tmp_path, progress=False, data=mnist_small).fit()
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(path.read_bytes()[:300])
    damaged = path.read_bytes()
    with pytest.raises(ValueError, match="damaged or not a niti-hw checkpoint.*nothing was changed"):
        Trainer.resume(path, epochs=2, data=mnist_small)
    assert path.read_bytes() == damaged
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.npz")


def test_checkpoint_of_another_model_is_refused(tmp_path, mnist_small):
    Trainer(TrainConfig(epochs=1), tmp_path, progress=False, data=mnist_small).fit()
    code = main(["train", "--resume", str(tmp_path / "checkpoint.npz"), "--epochs", "2",
                 "--model", "vgg11", "--quiet"])
    assert code == 2
    meta, arrays = load_checkpoint(tmp_path / "checkpoint.npz")
    assert meta["epoch"] == 1 and meta["config"]["model"] == "lenet5"
    trainer = Trainer(TrainConfig(epochs=1), tmp_path / "x", progress=False, data=mnist_small)
    arrays["int8/w0"] = arrays["int8/w0"][:2]
    with pytest.raises(ValueError, match=r"weights of layer 0 have shape \(2, 5, 1, 20\)"):
        trainer.runs[0].load_state_arrays(arrays)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="unknown model 'resnet'; valid models: lenet5, vgg11"):
        TrainConfig(model="resnet")
    with pytest.raises(ValueError, match="valid datasets: mnist, fashion-mnist, idx, cifar10"):
        TrainConfig(dataset="imagenet")
    with pytest.raises(ValueError, match="start at epoch 0"):
        TrainConfig(mu_schedule=((2, 3),))
    with pytest.raises(ValueError, match="epoch:m_u pairs"):
        parse_schedule("0-3")
    assert parse_schedule("0:3,5:2") == ((0, 3), (5, 2))
    with pytest.raises(ValueError, match="names epoch 0 twice, so its m_u is ambiguous"):
        TrainConfig(mu_schedule=((0, 3), (0, 2)))
    assert TrainConfig(mu_schedule=((0, 3), (5, 2))).mu_at(7) == 2


def test_input_that_does_not_fit_names_the_layer():
    with pytest.raises(ValueError, match=r"vgg11 does not fit a 28x28x1 input: layer 20 Pool.*1x1 input"):
        build_network(MODELS["vgg11"], (28, 28, 1), 10, seed=0)


@pytest.mark.parametrize("model, shape, classes", [
    ("vgg-small-7", (32, 32, 3), 10), ("vgg11", (32, 32, 3), 10),
    ("alexnet", (67, 67, 3), 1000),  # reduced input: the CPU can take a step of it
])
def test_large_models_take_a_training_step(model, shape, classes):
    built = build_network(MODELS[model], shape, classes, seed=0)
    data = random_dataset(shape, classes, n=2)
    before = [layer.weights.values.copy() for layer in built.net.weighted_layers]
    x = QTensor((data.train_images.astype(np.int16) - 128 >> 1).astype(np.int8), -7)
    logits = built.net.train_step(x, data.train_labels, 3, RoundingPolicy())
    assert logits.shape == (2, classes)
    changed = [(a != layer.weights.values).any()
               for a, layer in zip(before, built.net.weighted_layers)]
    assert changed[-1] and sum(changed) >= len(changed) // 2


def test_fp32_twin_mirrors_layout_and_initial_weights():
    # Small integer weights and inputs keep every accumulator below 128, so the golden network
    # does no rounding and both must agree exactly, which checks NHWC order at Flatten.
    from niti_hw.train.float_run import twin_module

    spec = ModelSpec("tiny", (Conv(3, 2), Flat(), Fc(4)), (4, 4, 2), ((0, 1),))
    built = build_network(spec, (4, 4, 2), 4, seed=0)
    rng = np.random.default_rng(0)
    for layer in built.net.weighted_layers:
        layer.weights.values = rng.integers(-1, 2, layer.weights.values.shape).astype(np.int32)
        layer.weights.exp = 0
    built.initial_weights = [layer.weights.values.astype(float)
                             for layer in built.net.weighted_layers]
    x = rng.integers(0, 2, (3, 4, 4, 2)).astype(np.int8)
    golden = built.net.forward(QTensor(x, 0), RoundingPolicy())
    assert np.abs(golden.values).max() < 64 and golden.exp == 0
    twin = twin_module(built).double()
    out = twin(torch.from_numpy(x.astype(np.float64)).permute(0, 3, 1, 2)).detach().numpy()
    # ReLU-free: the twin's linear map equals the golden result exactly.
    assert (out == golden.values).all()


def test_cli_trains_and_prints_a_summary(tmp_path, capsys):
    code = main(["train", "--limit-train", "128", "--limit-test", "64", "--epochs", "1",
                 "--baseline", "fp32", "--out", str(tmp_path), "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert "niti-int8" in out and "fp32" in out and "best_test_pct" in out
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    assert sorted(metrics.run) == ["fp32", "niti-int8"]


def test_a_batch_beyond_the_int32_bound_is_refused_before_anything_is_written(tmp_path):
    """LeNet-5's conv1 gradient reduces over 576 products per image (24x24 outputs): 231 images
    give K = 133,056, below SPEC's bound; 232 give 133,632, which the golden model refuses."""
    data = random_dataset((28, 28, 1), 10, n=232)
    with pytest.raises(ValueError, match=r"^lenet5 1x28x28 batch 232: conv1 gradient GEMM reduces "
                                         r"over K = 133,632 products; a 32-bit accumulator holds "
                                         r"at most 133,142 exactly \(SPEC\), and the golden model "
                                         r"and the RTL refuse it; use --batch-size 231 or less$"):
        Trainer(TrainConfig(batch_size=232, backend="sim", hardware={"acc_bits": 20}),
                tmp_path / "run", progress=False, data=data)
    assert not (tmp_path / "run").exists()
    Trainer(TrainConfig(batch_size=256), tmp_path / "run", progress=False,
            data=random_dataset((28, 28, 1), 10, n=231))  # the images there are: a batch of 231


def test_the_refused_batch_is_where_the_golden_model_refuses():
    built = build_network(MODELS["lenet5"], (28, 28, 1), 10, seed=0)
    for batch, refused in ((231, False), (232, True)):
        data = random_dataset((28, 28, 1), 10, n=batch)
        x = QTensor((data.train_images.astype(np.int16) - 128 >> 1).astype(np.int8), -7)
        if refused:
            with pytest.raises(ValueError, match="reduces over K = 133632 terms"):
                built.net.train_step(x, data.train_labels, 3, RoundingPolicy())
        else:
            built.net.train_step(x, data.train_labels, 3, RoundingPolicy())
