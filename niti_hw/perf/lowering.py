"""Lower a model, input shape and batch to the operations of one NITI training step.

The list follows the golden training step (`niti_hw.golden.network.Sequential.train_step`): forward
through every layer, the integer loss gradient, backward from the last layer to the first (the first
layer propagates no error). Each layer's weight update follows its gradient GEMM, while the int32
gradient is still in the tensor buffer; its weights are not read again in the step, so the values
equal golden's updates-at-the-end (only the order of stochastic-rounding LFSR draws differs). Each
int32 tensor a GEMM produces is narrowed to int8 the NITI way: one bitwidth pass over the whole
tensor (B), then one rounding pass by k = max(0, B - 7) (SPEC). Shapes follow the golden layers
(NHWC, im2col columns in (kh, kw, cin) order); `niti-hw estimate` and `--backend sim` share this
one lowering.

GEMMs are C[m x n] = A[m x k] @ B[k x n]:
- Conv forward: cols (N*OH*OW x KH*KW*Cin) @ W (KH*KW*Cin x Cout)
- Conv error: E (N*OH*OW x Cout) @ W^T (Cout x KH*KW*Cin), then col2im onto the input shape
- Conv gradient: cols^T (KH*KW*Cin x N*OH*OW) @ E (N*OH*OW x Cout)
- Linear forward x @ W, error E @ W^T, gradient x^T @ E.
"""

from __future__ import annotations

from dataclasses import dataclass

from niti_hw.models import Conv, Fc, Flat, ModelSpec, Pool, Relu, get_model
from niti_hw.params import HardwareParams

PHASES = ("forward", "loss", "error", "gradient", "update")
ACT, ACC, WEIGHT, MASK, INDEX = "act", "acc", "weight", "mask", "index"
"""Kinds of stored values: int8 activation/error/gradient, int32 accumulator, weight of
`weight_bits`, a ReLU mask bit, a max-pool winner index. `niti_hw.perf.cost` turns them into bytes."""
INPUT, LOSS_ERROR = "input", "loss.err"
"""Tensors no layer names: the step's input batch and the loss gradient (the last layer's error)."""


class Access(tuple):
    """(kind, count) of the values an op reads or writes, and the tensor they belong to.

    It is that pair wherever a pair is used (unpacking, comparison, `dict`), so the costs read it
    as a pair; `tensor` names the tensor in the step ("conv1.out", "relu2.mask"; "" where
    unnamed), which is how `niti_hw.perf.locality` links a producer to its consumer. Accesses that
    differ only in their tensor compare equal.
    """

    tensor: str

    def __new__(cls, kind: str, count: int, tensor: str = ""):
        access = super().__new__(cls, (kind, count))
        access.tensor = tensor
        return access

    def __getnewargs__(self):
        return (self[0], self[1], self.tensor)

    def __repr__(self) -> str:
        return f"Access({self[0]!r}, {self[1]!r}, {self.tensor!r})"

    @property
    def kind(self) -> str:
        return self[0]

    @property
    def count(self) -> int:
        return self[1]


@dataclass(frozen=True)
class Op:
    """One operation of a training step.

    GEMMs set m, n, k (C[m x n] = A[m x k] @ B[k x n]); their `reads` are the stored values A and B
    are gathered from (A of an im2col convolution: its input tensor, not the m x k columns), their
    `writes` the int32 result (none when col2im consumes the drain). Streaming ops set `elements`
    (values through the `lanes`-wide post-processing units) and `alu_ops` (int32 operations);
    `reads`/`writes` list the values taken from and left in memory (`Access`: kind, count and
    tensor). int32 ("acc") values live in the tensor buffer; a bitwidth pass with no reads runs on
    the GEMM's drain. The `kept_*` fields are set by `niti_hw.perf.locality` only (empty: every
    value not in the tensor buffer goes through DRAM).
    """

    layer: str
    phase: str
    op: str
    m: int = 0
    n: int = 0
    k: int = 0
    elements: int = 0
    alu_ops: int = 0
    reads: tuple[tuple[str, int], ...] = ()
    writes: tuple[tuple[str, int], ...] = ()
    reuse: int = 1
    """Most entries of the GEMM's operands or result one stored value stands for: an im2col A or a
    col2im-summed C repeats a value in up to ceil(kernel / stride)^2 windows (`perf.bounds`)."""
    line_values: int = 0
    """A max-pool's line buffer: the values of `kernel - 1` input rows (W x C each) it must hold to
    pool a row-major (NHWC) stream on the fly (`perf.fusion`)."""
    kept_in: tuple[tuple[str, str], ...] = ()
    """(tensor, buffer): inputs the op before left in on-chip `buffer`, read there, not in DRAM."""
    kept_out: tuple[tuple[str, str], ...] = ()
    """(tensor, buffer): outputs also written to on-chip `buffer`, where the next op reads them."""
    unstored: tuple[str, ...] = ()
    """Outputs of `kept_out` that no other op of the step reads: they never reach DRAM."""

    def __post_init__(self) -> None:
        for field in ("reads", "writes"):  # a plain (kind, count) pair is an unnamed tensor
            accesses = getattr(self, field)
            object.__setattr__(self, field, tuple(
                a if isinstance(a, Access) else Access(*a) for a in accesses))

    @property
    def is_gemm(self) -> bool:
        return self.op == "gemm"

    @property
    def macs(self) -> int:
        return self.m * self.n * self.k


# ALU operations per element of the streaming ops (int32 adds/compares/shifts), for the energy table.
ALU_PER_ELEMENT = {
    "bitwidth": 1,   # |v| OR into the accumulator
    "round": 3,      # shift, round increment, saturate
    "relu": 1,       # compare
    "relu_backward": 1,
    "pool_backward": 1,  # route (select) per input position
    "col2im": 1,     # one add per column entry
    "loss_gradient": 6,  # scale, exp2 by shift, row sum, divide, subtract, round
    "weight_update": 2,  # subtract, saturate
    "weight_narrow": 3,  # nearest rounding of wide weights to int8
}


@dataclass(frozen=True)
class _Shape:
    """An activation shape without the batch: (H, W, C) maps or (features,) vectors."""

    dims: tuple[int, ...]

    @property
    def size(self) -> int:
        total = 1
        for d in self.dims:
            total *= d
        return total


def parse_model(spec_or_name) -> ModelSpec:
    return spec_or_name if isinstance(spec_or_name, ModelSpec) else get_model(spec_or_name)


UPDATE_ORDERS = ("after_gradient", "after_backward")


def lower(spec_or_name, input_shape, batch: int, classes: int | None = None,
          weight_bits: int = 8, updates: str = "after_gradient") -> list[Op]:
    """Operations of one training step of `spec_or_name` on a batch of `batch` inputs.

    `input_shape` is (C, H, W); `classes` sizes the last linear layer (default: the spec's);
    `weight_bits` is the stored weight width (`IntegerWeights.acc_bits`, 8..24): wider weights are
    narrowed to int8 before use and updated in full width. `updates`: each layer's update right
    after its gradient GEMM (the cost model's schedule), or all of them after the backward pass
    in forward layer order, as `Sequential.train_step` does: the order in which stochastic
    rounding draws from the LFSR lanes, so the one a program must follow to match golden.
    """
    if updates not in UPDATE_ORDERS:
        raise ValueError(f"updates must be one of {UPDATE_ORDERS}; got {updates!r}")
    spec = parse_model(spec_or_name)
    _check_positive_int("batch", batch)
    if len(input_shape) != 3 or any(not isinstance(d, int) or d < 1 for d in input_shape):
        raise ValueError(f"input shape must be C x H x W positive ints, e.g. 3x32x32; got {input_shape}")
    if not isinstance(weight_bits, int) or not 8 <= weight_bits <= 24:
        raise ValueError(f"weight_bits must be in 8..24 (stored weight width); got {weight_bits!r}")
    c, h, w = input_shape
    layers = _resolve(spec, (h, w, c), classes, input_shape, weight_bits)
    inputs = [INPUT] + [layer.tensor("out") for layer in layers[:-1]]
    ops: list[Op] = []
    for layer, x in zip(layers, inputs):
        ops += layer.forward(batch, x)
    ops += _loss(layers[-1], batch)
    error = LOSS_ERROR
    for index in range(len(layers) - 1, -1, -1):
        ops += layers[index].backward(batch, index > 0, inputs[index], error)
        if updates == "after_gradient":
            ops += layers[index].update()
        error = layers[index].tensor("err")
    if updates == "after_backward":
        for layer in layers:
            ops += layer.update()
    return ops


def _check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int; got {value!r}")


def _narrow(name: str, phase: str, values: int, tensor: str, detect_pass: bool = False,
            stored: bool = True) -> list[Op]:
    """NITI narrowing of int32 tensor `tensor`32 in the tensor buffer: B over the whole tensor (on
    the GEMM's drain, or a pass of its own when col2im still adds into the values), then R(x, k)
    with k = max(0, B - 7) for activations and errors; the int8 result (`tensor`) is stored unless
    the next unit takes it (the weight update)."""
    wide = Access(ACC, values, tensor + "32")
    return [
        Op(name, phase, "bitwidth", elements=values, alu_ops=values * ALU_PER_ELEMENT["bitwidth"],
           reads=(wide,) if detect_pass else ()),
        Op(name, phase, "round", elements=values, alu_ops=values * ALU_PER_ELEMENT["round"],
           reads=(wide,), writes=(Access(ACT, values, tensor),) if stored else ()),
    ]


class _Layer:
    """A layer's ops. `x` names the layer's input tensor, `error` the error arriving from above;
    the layer names what it writes `tensor(...)`: "out" (forward), "err" (the error it
    propagates), "mask", "index", "weight"."""

    name: str

    def tensor(self, what: str) -> str:
        return f"{self.name}.{what}"

    def forward(self, batch: int, x: str) -> list[Op]:
        return []

    def backward(self, batch: int, propagate: bool, x: str, error: str) -> list[Op]:
        return []

    def update(self) -> list[Op]:
        return []


class _Weighted(_Layer):
    weight_bits: int
    weights: int

    @property
    def int8_weights(self) -> Access:
        """The weights the GEMMs read: the stored ones, or their int8 copy when stored wider."""
        name = self.tensor("weight8" if self.weight_bits > 8 else "weight")
        return Access(ACT, self.weights, name)

    def update(self):
        return _update(self, self.weights, self.weight_bits)


@dataclass
class _Conv(_Weighted):
    name: str
    spec: Conv
    inp: _Shape
    out: _Shape
    weight_bits: int = 8

    @property
    def depth(self) -> int:  # KH * KW * Cin
        return self.spec.kernel ** 2 * self.inp.dims[2]

    @property
    def cout(self) -> int:
        return self.spec.out_channels

    @property
    def reuse(self) -> int:  # windows one input value can fall in
        return (-(-self.spec.kernel // self.spec.stride)) ** 2

    @property
    def weights(self) -> int:
        return self.depth * self.cout

    def forward(self, batch, x):
        m = batch * self.out.dims[0] * self.out.dims[1]
        source = batch * self.inp.size
        out = self.tensor("out")
        return [
            Op(self.name, "forward", "gemm", m, self.cout, self.depth,
               reads=(Access(ACT, source, x), self.int8_weights),
               writes=(Access(ACC, m * self.cout, out + "32"),), reuse=self.reuse),
            *_narrow(self.name, "forward", m * self.cout, out),
        ]

    def backward(self, batch, propagate, x, error):
        m = batch * self.out.dims[0] * self.out.dims[1]
        source = batch * self.inp.size
        err = self.tensor("err")
        ops = []
        if propagate:
            cols = m * self.depth
            ops += [
                Op(self.name, "error", "gemm", m, self.depth, self.cout,
                   reads=(Access(ACT, m * self.cout, error), self.int8_weights), reuse=self.reuse),
                Op(self.name, "error", "col2im", elements=cols,
                   alu_ops=cols * ALU_PER_ELEMENT["col2im"],
                   writes=(Access(ACC, source, err + "32"),)),
                *_narrow(self.name, "error", source, err,
                         detect_pass=self.spec.kernel > self.spec.stride),
            ]
        ops.append(Op(self.name, "gradient", "gemm", self.depth, self.cout, m,
                      reads=(Access(ACT, source, x), Access(ACT, m * self.cout, error)),
                      writes=(Access(ACC, self.weights, self.tensor("grad32")),),
                      reuse=self.reuse))
        return ops


@dataclass
class _Linear(_Weighted):
    name: str
    inp: _Shape
    out_features: int
    weight_bits: int = 8

    @property
    def weights(self) -> int:
        return self.inp.size * self.out_features

    def forward(self, batch, x):
        fin, fout = self.inp.size, self.out_features
        out = self.tensor("out")
        return [
            Op(self.name, "forward", "gemm", batch, fout, fin,
               reads=(Access(ACT, batch * fin, x), self.int8_weights),
               writes=(Access(ACC, batch * fout, out + "32"),)),
            *_narrow(self.name, "forward", batch * fout, out),
        ]

    def backward(self, batch, propagate, x, error):
        fin, fout = self.inp.size, self.out_features
        err = self.tensor("err")
        ops = []
        if propagate:
            ops += [
                Op(self.name, "error", "gemm", batch, fin, fout,
                   reads=(Access(ACT, batch * fout, error), self.int8_weights),
                   writes=(Access(ACC, batch * fin, err + "32"),)),
                *_narrow(self.name, "error", batch * fin, err),
            ]
        ops.append(Op(self.name, "gradient", "gemm", fin, fout, batch,
                      reads=(Access(ACT, batch * fin, x), Access(ACT, batch * fout, error)),
                      writes=(Access(ACC, self.weights, self.tensor("grad32")),)))
        return ops


def _update(layer: _Layer, weights: int, weight_bits: int) -> list[Op]:
    """SPEC 3.2: B of the int32 gradient, round it to m_u bits, then the update unit: W = sat(W - g)
    and, for weights wider than int8, the int8 copy the next forward pass reads (same pass)."""
    wide = weight_bits > 8
    alu = ALU_PER_ELEMENT["weight_update"] + (ALU_PER_ELEMENT["weight_narrow"] if wide else 0)
    stored = Access(WEIGHT, weights, layer.tensor("weight"))
    copy = (Access(ACT, weights, layer.tensor("weight8")),) if wide else ()
    return [
        *_narrow(layer.name, "update", weights, layer.tensor("grad"), stored=False),
        Op(layer.name, "update", "weight_update", elements=weights, alu_ops=weights * alu,
           reads=(stored,), writes=(stored,) + copy),
    ]


@dataclass
class _Relu(_Layer):
    name: str
    shape: _Shape

    def forward(self, batch, x):
        n = batch * self.shape.size
        return [Op(self.name, "forward", "relu", elements=n, alu_ops=n * ALU_PER_ELEMENT["relu"],
                   reads=(Access(ACT, n, x),),
                   writes=(Access(ACT, n, self.tensor("out")),
                           Access(MASK, n, self.tensor("mask"))))]

    def backward(self, batch, propagate, x, error):
        n = batch * self.shape.size
        return [Op(self.name, "error", "relu_backward", elements=n,
                   alu_ops=n * ALU_PER_ELEMENT["relu_backward"],
                   reads=(Access(ACT, n, error), Access(MASK, n, self.tensor("mask"))),
                   writes=(Access(ACT, n, self.tensor("err")),))]


@dataclass
class _Pool(_Layer):
    name: str
    spec: Pool
    inp: _Shape
    out: _Shape

    def forward(self, batch, x):
        n_in, n_out = batch * self.inp.size, batch * self.out.size
        window = self.spec.kernel ** 2
        _, width, channels = self.inp.dims
        return [Op(self.name, "forward", "pool", elements=n_in, alu_ops=n_out * (window - 1),
                   reads=(Access(ACT, n_in, x),),
                   writes=(Access(ACT, n_out, self.tensor("out")),
                           Access(INDEX, n_out, self.tensor("index"))),
                   line_values=(self.spec.kernel - 1) * width * channels)]

    def backward(self, batch, propagate, x, error):
        n_in, n_out = batch * self.inp.size, batch * self.out.size
        return [Op(self.name, "error", "pool_backward", elements=n_in,
                   alu_ops=n_in * ALU_PER_ELEMENT["pool_backward"],
                   reads=(Access(ACT, n_out, error), Access(INDEX, n_out, self.tensor("index"))),
                   writes=(Access(ACT, n_in, self.tensor("err")),))]


def _loss(last: _Layer, batch: int) -> list[Op]:
    if not isinstance(last, _Linear):
        raise ValueError(f"the loss needs a linear last layer; got {type(last).__name__}")
    n = batch * last.out_features
    return [Op("loss", "loss", "loss_gradient", m=batch, n=last.out_features, elements=n,
               alu_ops=n * ALU_PER_ELEMENT["loss_gradient"],
               reads=(Access(ACT, n, last.tensor("out")),), writes=(Access(ACT, n, LOSS_ERROR),))]


def _resolve(spec: ModelSpec, hwc, classes, chw, weight_bits: int = 8) -> list[_Layer]:
    """Walk the spec, shape by shape, as the network builder does; a misfit names the layer."""
    shape = _Shape(tuple(hwc))
    last_fc = max(i for i, item in enumerate(spec.layers) if isinstance(item, Fc))
    counts: dict[str, int] = {}
    layers: list[_Layer] = []

    def name(kind):
        counts[kind] = counts.get(kind, 0) + 1
        return f"{kind}{counts[kind]}"

    for index, item in enumerate(spec.layers):
        try:
            layer, shape = _make(item, shape, name, classes if index == last_fc else None,
                                 weight_bits)
        except ValueError as error:
            raise ValueError(
                f"{spec.name} does not fit a {chw[0]}x{chw[1]}x{chw[2]} (CxHxW) input: layer "
                f"{index} {repr(item).replace('()', '')} fails on shape {shape.dims}: {error}"
            ) from None
        if layer is not None:
            layers.append(layer)
    return layers


def _make(item, shape: _Shape, name, classes, weight_bits: int):
    if isinstance(item, Conv):
        if len(shape.dims) != 3:
            raise ValueError("a convolution needs an (H, W, C) input")
        h, w, _ = shape.dims
        k, s, p = item.kernel, item.stride, item.padding
        oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        if oh < 1 or ow < 1:
            raise ValueError(f"Conv2d {k}x{k} (stride {s}, padding {p}) does not fit a {h}x{w} input")
        out = _Shape((oh, ow, item.out_channels))
        return _Conv(name("conv"), item, shape, out, weight_bits), out
    if isinstance(item, Pool):
        if len(shape.dims) != 3:
            raise ValueError("max-pooling needs an (H, W, C) input")
        h, w, c = shape.dims
        k, s = item.kernel, item.stride or item.kernel
        oh, ow = (h - k) // s + 1, (w - k) // s + 1
        if oh < 1 or ow < 1:
            raise ValueError(f"MaxPool2d({k}) does not fit a {h}x{w} input")
        out = _Shape((oh, ow, c))
        return _Pool(name("pool"), item, shape, out), out
    if isinstance(item, Relu):
        return _Relu(name("relu"), shape), shape
    if isinstance(item, Flat):
        return None, _Shape((shape.size,))
    if isinstance(item, Fc):
        if len(shape.dims) != 1:
            raise ValueError("a linear layer needs a flat input (add Flat before it)")
        out = classes or item.out_features
        return _Linear(name("fc"), shape, out, weight_bits), _Shape((out,))
    raise TypeError(f"unknown layer description {item!r}")


def layer_shapes(spec_or_name, input_shape, classes: int | None = None) -> dict[str, _Layer]:
    """Each layer of the step by the name its ops carry ("conv1", "pool2", "fc1"), with the shapes
    the ops were sized by: a convolution's or pool's `spec`, `inp` and `out` (`.dims`: H, W, C), a
    linear layer's `inp` and `out_features`. For programs that address these shapes
    (`niti_hw.program`). `input_shape` is (C, H, W), as for `lower`."""
    spec = parse_model(spec_or_name)
    c, h, w = input_shape
    return {layer.name: layer for layer in _resolve(spec, (h, w, c), classes, input_shape)}


def conv_inputs(spec_or_name, input_shape) -> list[tuple[str, Conv, tuple[int, int, int]]]:
    """(name, Conv, input (H, W, C)) of each convolution, for tools that take conv layers
    (SCALE-Sim's topology files)."""
    spec = parse_model(spec_or_name)
    c, h, w = input_shape
    return [(layer.name, layer.spec, layer.inp.dims)
            for layer in _resolve(spec, (h, w, c), None, input_shape) if isinstance(layer, _Conv)]


def gemm_op(m: int, n: int, k: int) -> list[Op]:
    """A single GEMM (C[m x n] = A[m x k] @ B[k x n]) with its NITI narrowing, as `--gemm` lowers it."""
    for label, value in (("M", m), ("N", n), ("K", k)):
        _check_positive_int(label, value)
    return [Op("gemm", "forward", "gemm", m, n, k,
               reads=(Access(ACT, m * k, "gemm.a"), Access(ACT, k * n, "gemm.b")),
               writes=(Access(ACC, m * n, "gemm.out32"),)),
            *_narrow("gemm", "forward", m * n, "gemm.out")]


def check_reductions(ops: list[Op], params: HardwareParams, workload: str,
                     batch: int | None = None, batch_flag: str = "--batch") -> None:
    """Refuse a step with a GEMM whose K is more products than the accumulator holds exactly
    (`params.max_k`): the golden model (SPEC's int32 bound) and the RTL's tiling
    (`tiling.check_gemm`) refuse it, so no cost of it is real.

    A weight-gradient GEMM reduces over the batch (times a convolution's output positions), so
    with `batch` the message says the largest `batch_flag` that fits; the other GEMMs reduce over
    a layer's depth, the same at every batch. Without `batch`, `ops` is one GEMM (`gemm_op`).
    """
    order = list(dict.fromkeys(op.layer for op in ops))
    over = [op for op in ops if op.is_gemm and op.k > params.max_k]
    if not over:
        return
    fixed = [op for op in over if batch is None or op.phase != "gradient"]
    worst = min(fixed or over, key=lambda op: (-op.k, order.index(op.layer)))
    if params.acc_bits >= 32:
        holds = (f"a 32-bit accumulator holds at most {params.max_k:,} exactly (SPEC), and the "
                 "golden model and the RTL refuse it")
    else:
        holds = (f"a {params.acc_bits}-bit accumulator holds at most {params.max_k:,} exactly, "
                 "and the RTL's tiling refuses it")
    if batch is None:
        hint = f"K must be {params.max_k:,} or less"
    elif fixed:
        hint = "no batch fits: this K is the layer's depth, the same at every batch"
    else:
        per_input = max(op.k // batch for op in ops if op.is_gemm and op.phase == "gradient")
        fit = params.max_k // per_input
        hint = (f"use {batch_flag} {fit} or less" if fit else
                f"no batch fits: one input alone needs K = {per_input:,}")
    gemm = "the GEMM" if batch is None else f"{worst.layer} {worst.phase} GEMM"
    raise ValueError(f"{workload}: {gemm} reduces over K = {worst.k:,} products; {holds}; {hint}")
