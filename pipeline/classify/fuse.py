"""The CPU inference form of a model: each transformer layer's Linear as one oneDNN call, GELU fused in.

On CPU an eager `nn.Linear` is `addmm`: it first copies the bias into the output, and the feed-forward's
GELU then makes a second pass over a (tokens x 1536) tensor. oneDNN's linear primitive adds the bias and
applies GELU as post-ops while the output tile is still in cache, on weights reordered once into its
blocked layout. On this project's 2-core CPU (AVX-512 BF16) that made the forward pass of `seci-fast`
1.15-1.20x faster in bf16 and 1.2x in fp32 (scripts/bench_inference.py measures the engine with it).

`torch.compile` does the same fusions and more, at ~25 s of compiling per process; this needs none.
The operators are the ones inductor itself emits for frozen CPU graphs (`torch.ops.mkldnn`).
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def available(dtype: torch.dtype) -> bool:
    """Whether this torch build has the oneDNN linear operators (every CPU wheel does) and this CPU runs them
    in `dtype`: fp32 always, bf16 only with oneDNN's bf16 support (the check inductor makes before it emits them)."""
    ops = torch.ops.mkldnn
    if not torch.backends.mkldnn.is_available() or not all(
        hasattr(ops, name) for name in ("_linear_pointwise", "_reorder_linear_weight", "_is_mkldnn_bf16_supported")
    ):
        return False
    if dtype == torch.float32:
        return True
    return dtype == torch.bfloat16 and bool(ops._is_mkldnn_bf16_supported())


class OneDNNLinear(nn.Module):
    """`nn.Linear`, optionally followed by exact (erf) GELU, as one oneDNN call. Inference only: the weight
    is stored in oneDNN's layout and has no gradient."""

    def __init__(self, linear: nn.Linear, gelu: bool = False, rows_hint: int = 8192) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        # The hint only picks the layout; any number of rows works with it.
        self.weight = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach(), rows_hint)
        self.bias = None if linear.bias is None else linear.bias.detach()
        self.attr, self.algorithm = ("gelu", "none") if gelu else ("none", "")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, self.attr, [], self.algorithm)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, post_op={self.attr}"


def _exact_gelu(module: nn.Module) -> bool:
    """Hugging Face's `GELUActivation` around `torch.nn.functional.gelu` (erf), or `nn.GELU()`."""
    if isinstance(module, nn.GELU):
        return module.approximate == "none"
    return getattr(module, "act", None) is torch.nn.functional.gelu


def fuse_linears(model: nn.Module, rows_hint: int = 8192) -> nn.Module:
    """A copy of `model` for CPU inference whose transformer layers run their Linear layers through oneDNN.

    Only modules of BERT-style layers are touched (`BertIntermediate`'s dense layer takes its GELU along);
    the heads keep theirs. The original model is left as it was (its weights stay trainable and savable).
    """
    fused = copy.deepcopy(model)
    for module in list(fused.modules()):
        if type(module).__name__.endswith("Layer") and hasattr(module, "intermediate"):
            _fuse_layer(module, rows_hint)
    return fused


def _fuse_layer(layer: nn.Module, rows_hint: int) -> None:
    intermediate = layer.intermediate
    if isinstance(intermediate.dense, nn.Linear) and _exact_gelu(intermediate.intermediate_act_fn):
        intermediate.dense = OneDNNLinear(intermediate.dense, gelu=True, rows_hint=rows_hint)
        intermediate.intermediate_act_fn = nn.Identity()
    for parent in list(layer.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear):
                setattr(parent, name, OneDNNLinear(child, rows_hint=rows_hint))
