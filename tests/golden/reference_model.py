"""An independent PyTorch model of tessera's two transformer families, for the golden test.

Written from the maths with torch autograd, not from tessera's kernels:

  gpt2:   x = E[tokens] + P[positions]; blocks; LayerNorm; logits = x @ E^T (tied head).
          LayerNorm with gain and bias, every linear with a bias, MLP = proj(gelu_tanh(fc(x))).
  openlm: x = E[tokens]; rotary positions on q and k; blocks; norm; logits = head(x).
          LayerNorm (gain and bias) or RMSNorm (gain), no linear biases,
          MLP = down(silu(gate(x)) * up(x)) (SwiGLU).

  block(x) = x' + mlp(norm2(x')) with x' = x + attn(norm1(x))   (pre-norm)
  attn(x)  = out(concat_h softmax(q_h k_h^T / sqrt(head_dim) + causal mask) v_h)
  loss per token = logsumexp(logits) - logits[target] + z_loss * logsumexp(logits)^2

Rotary follows GPT-NeoX ("rotate_half"): within a head, dimension i pairs with i + head_dim/2 and
turns by position * base^(-2i/head_dim).

Module attribute names are chosen so that a torch parameter name with "." replaced by "/" is the
tessera parameter name ("layers.0.attn.q.weight" is "layers/0/attn/q/weight"); linear weights are
[out, in] in both. `load_tessera_parameters` copies tessera's dumped tensors in by name.

Precision: the reference runs in float64 (see `DTYPE`). Tessera computes in float32; with a
float64 reference the measured difference is tessera's own rounding error rather than the sum of
two fp32 implementations' errors (whose operation order, BLAS and threading differ), so the fp32
tolerances of test_golden.py say something about tessera alone and do not depend on how this
machine's torch happens to order its fp32 sums.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

DTYPE = torch.float64


@dataclass
class ModelSettings:
    family: str  # "gpt2" or "openlm"
    n_layers: int
    d_model: int
    n_heads: int
    seq_len: int
    vocab_size: int
    ffn_hidden: int
    norm: str  # "layernorm" or "rmsnorm"
    norm_eps: float
    rotary_base: float
    z_loss: float

    @staticmethod
    def from_json(model: dict) -> "ModelSettings":
        fields = ModelSettings.__dataclass_fields__
        return ModelSettings(**{name: model[name] for name in fields})

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads


class LayerNorm(nn.Module):
    """(x - mean) / sqrt(var + eps) * gain + bias over the last dimension, biased variance."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.gain = nn.Parameter(torch.ones(dim, dtype=DTYPE))
        self.bias = nn.Parameter(torch.zeros(dim, dtype=DTYPE))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=-1, keepdim=True)
        var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
        return (x - mean) / torch.sqrt(var + self.eps) * self.gain + self.bias


class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * gain over the last dimension."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.gain = nn.Parameter(torch.ones(dim, dtype=DTYPE))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / torch.sqrt((x * x).mean(dim=-1, keepdim=True) + self.eps) * self.gain


def make_norm(settings: ModelSettings) -> nn.Module:
    if settings.norm == "layernorm":
        return LayerNorm(settings.d_model, settings.norm_eps)
    if settings.norm == "rmsnorm":
        return RMSNorm(settings.d_model, settings.norm_eps)
    raise ValueError(f"unknown norm '{settings.norm}' (expected layernorm or rmsnorm)")


def linear(in_features: int, out_features: int, bias: bool) -> nn.Linear:
    return nn.Linear(in_features, out_features, bias=bias, dtype=DTYPE)


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rotary(x: torch.Tensor, base: float) -> torch.Tensor:
    """x is [batch, heads, seq, head_dim]; pair (i, i + head_dim/2) turns by pos * base^(-2i/d)."""
    seq, head_dim = x.shape[-2], x.shape[-1]
    inverse_frequency = base ** (-torch.arange(0, head_dim // 2, dtype=DTYPE) * 2.0 / head_dim)
    angle = torch.arange(seq, dtype=DTYPE)[:, None] * inverse_frequency[None, :]
    angle = torch.cat((angle, angle), dim=-1)  # [seq, head_dim]
    return x * torch.cos(angle) + rotate_half(x) * torch.sin(angle)


class Attention(nn.Module):
    def __init__(self, settings: ModelSettings):
        super().__init__()
        d, bias = settings.d_model, settings.family == "gpt2"
        self.settings = settings
        self.q = linear(d, d, bias)
        self.k = linear(d, d, bias)
        self.v = linear(d, d, bias)
        self.out = linear(d, d, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq, d = x.shape
        heads, head_dim = self.settings.n_heads, self.settings.head_dim

        def split(t: torch.Tensor) -> torch.Tensor:  # [batch, heads, seq, head_dim]
            return t.view(batch, seq, heads, head_dim).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        if self.settings.family == "openlm":
            q = apply_rotary(q, self.settings.rotary_base)
            k = apply_rotary(k, self.settings.rotary_base)
        scores = q @ k.transpose(-1, -2) / math.sqrt(head_dim)
        future = torch.triu(torch.ones(seq, seq, dtype=torch.bool), diagonal=1)
        probs = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
        return self.out((probs @ v).transpose(1, 2).reshape(batch, seq, d))


class GeluMlp(nn.Module):
    def __init__(self, settings: ModelSettings):
        super().__init__()
        self.fc = linear(settings.d_model, settings.ffn_hidden, True)
        self.proj = linear(settings.ffn_hidden, settings.d_model, True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(gelu_tanh(self.fc(x)))


class SwigluMlp(nn.Module):
    def __init__(self, settings: ModelSettings):
        super().__init__()
        self.gate = linear(settings.d_model, settings.ffn_hidden, False)
        self.up = linear(settings.d_model, settings.ffn_hidden, False)
        self.down = linear(settings.ffn_hidden, settings.d_model, False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.gate(x)
        return self.down(gate * torch.sigmoid(gate) * self.up(x))


class Block(nn.Module):
    def __init__(self, settings: ModelSettings):
        super().__init__()
        self.attn_norm = make_norm(settings)
        self.attn = Attention(settings)
        self.mlp_norm = make_norm(settings)
        self.mlp = GeluMlp(settings) if settings.family == "gpt2" else SwigluMlp(settings)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x))
        return x + self.mlp(self.mlp_norm(x))


class Embeddings(nn.Module):
    def __init__(self, settings: ModelSettings):
        super().__init__()
        self.tokens = nn.Embedding(settings.vocab_size, settings.d_model, dtype=DTYPE)
        if settings.family == "gpt2":
            self.positions = nn.Embedding(settings.seq_len, settings.d_model, dtype=DTYPE)


class ReferenceTransformer(nn.Module):
    def __init__(self, settings: ModelSettings):
        super().__init__()
        if settings.family not in ("gpt2", "openlm"):
            raise ValueError(f"unknown family '{settings.family}' (expected gpt2 or openlm)")
        self.settings = settings
        self.embed = Embeddings(settings)
        self.layers = nn.ModuleList(Block(settings) for _ in range(settings.n_layers))
        self.final_norm = make_norm(settings)
        if settings.family == "openlm":
            self.head = linear(settings.d_model, settings.vocab_size, False)

    def logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [batch, seq] -> logits [batch, seq, vocab]."""
        x = self.embed.tokens(tokens)
        if self.settings.family == "gpt2":
            x = x + self.embed.positions(torch.arange(tokens.shape[1]))[None]
        for block in self.layers:
            x = block(x)
        x = self.final_norm(x)
        if self.settings.family == "gpt2":
            return x @ self.embed.tokens.weight.t()  # tied head
        return self.head(x)

    def token_losses(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        lse = torch.logsumexp(logits, dim=-1)
        target_logit = logits.gather(-1, targets[..., None].long())[..., 0]
        return lse - target_logit + self.settings.z_loss * lse**2

    def forward(self, tokens: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean loss over every token of the batch."""
        return self.token_losses(self.logits(tokens), targets).mean()


def tessera_name(torch_name: str) -> str:
    return torch_name.replace(".", "/")


def named_tessera_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    return {tessera_name(name): p for name, p in model.named_parameters()}


# ---- tessera's dump files ----------------------------------------------------------------------


class GoldenCase:
    """One directory written by golden_dump (see the comment at the top of golden_dump.cpp)."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.config = json.loads((self.directory / "config.json").read_text())
        self.manifest = json.loads((self.directory / "manifest.json").read_text())
        self.results = json.loads((self.directory / "results.json").read_text())
        self.settings = ModelSettings.from_json(self.config["model"])
        self.batch = self.config["batch"]

    def floats(self, file: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
        values = np.fromfile(self.directory / file, dtype="<f4")
        return values if shape is None else values.reshape(shape)

    def tokens(self, file: str, shape: tuple[int, ...]) -> np.ndarray:
        return np.fromfile(self.directory / file, dtype="<i4").reshape(shape)

    def tensors(self, file: str, index: int = 0) -> dict[str, np.ndarray]:
        """Parameter-shaped blob `index` of a file (params_init.bin, grads.bin, params_final.bin
        hold one; train_grads.bin and train_params.bin one per step), by name."""
        total = sum(entry["count"] for entry in self.manifest)
        flat = self.floats(file)
        if flat.size % total != 0 or not 0 <= index < flat.size // total:
            raise ValueError(f"{file} holds {flat.size} floats: no blob {index} of {total}")
        flat = flat[index * total : (index + 1) * total]
        return {
            entry["name"]: flat[entry["offset"] : entry["offset"] + entry["count"]].reshape(
                entry["shape"]
            )
            for entry in self.manifest
        }


def load_tessera_parameters(model: nn.Module, tensors: dict[str, np.ndarray]) -> None:
    """Copies tessera's tensors into the model by name; the name sets and shapes must agree."""
    params = named_tessera_parameters(model)
    missing, unexpected = sorted(set(params) - set(tensors)), sorted(set(tensors) - set(params))
    if missing or unexpected:
        raise ValueError(
            f"parameter names differ: reference only {missing}, tessera only {unexpected}"
        )
    with torch.no_grad():
        for name, param in params.items():
            value = torch.from_numpy(np.asarray(tensors[name], dtype=np.float64))
            if tuple(value.shape) != tuple(param.shape):
                raise ValueError(
                    f"{name}: tessera shape {tuple(value.shape)}, reference {tuple(param.shape)}"
                )
            param.copy_(value)


# ---- optimizer ---------------------------------------------------------------------------------


def learning_rate(train: dict, step: int) -> float:
    """Linear warm-up to lr over warmup_steps, then cosine from lr to min_lr at step `steps`."""
    lr, warmup = train["lr"], train["warmup_steps"]
    if step <= warmup:
        return lr * step / max(1, warmup)
    if train["lr_schedule"] == "constant":
        return lr
    progress = min(1.0, (step - warmup) / max(1, train["steps"] - warmup))
    return train["min_lr"] + (lr - train["min_lr"]) * 0.5 * (1.0 + math.cos(math.pi * progress))


def decays(name: str, shape: torch.Size, train: dict) -> bool:
    """Weight decay on matrices; embeddings, norms and biases only when the config says so."""
    if name.startswith("embed/"):
        return train["decay_embeddings"]
    return len(shape) >= 2 or train["decay_norms_and_biases"]


def make_adamw(model: nn.Module, train: dict) -> torch.optim.AdamW:
    params = named_tessera_parameters(model)
    decayed = [p for name, p in params.items() if decays(name, p.shape, train)]
    kept = [p for name, p in params.items() if not decays(name, p.shape, train)]
    groups = [
        {"params": decayed, "weight_decay": train["weight_decay"]},
        {"params": kept, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(
        groups, lr=train["lr"], betas=(train["beta1"], train["beta2"]), eps=train["adam_eps"]
    )


def clip_and_step(model: nn.Module, optimizer: torch.optim.AdamW, train: dict, step: int):
    """Clips the gradients in p.grad to train["grad_clip"], then one AdamW step at the
    scheduled learning rate; returns (gradient norm before clipping, learning rate)."""
    if train["grad_clip"] > 0:
        norm = float(nn.utils.clip_grad_norm_(model.parameters(), train["grad_clip"]))
    else:
        norm = float(torch.sqrt(sum((p.grad**2).sum() for p in model.parameters())))
    lr = learning_rate(train, step)
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.step()
    return norm, lr


def replay_adamw(model: nn.Module, train: dict, step_grads: list) -> list:
    """AdamW driven by given gradients (step_grads[k]: name -> array, for step k + 1) instead of
    the model's own; returns the parameters (name -> array) after each step."""
    optimizer = make_adamw(model, train)
    params = named_tessera_parameters(model)
    trajectory = []
    for index, grads in enumerate(step_grads):
        for name, p in params.items():
            p.grad = torch.from_numpy(np.asarray(grads[name], dtype=np.float64)).clone()
        clip_and_step(model, optimizer, train, index + 1)
        trajectory.append({n: p.detach().numpy().copy() for n, p in params.items()})
    return trajectory


def train_steps(model: nn.Module, train: dict, tokens: np.ndarray, targets: np.ndarray) -> list:
    """One AdamW step per batch (tokens[step], targets[step]); per step: loss, lr, grad norm."""
    optimizer = make_adamw(model, train)
    records = []
    for index in range(tokens.shape[0]):
        step = index + 1
        optimizer.zero_grad(set_to_none=False)
        loss = model(torch.from_numpy(tokens[index]), torch.from_numpy(targets[index]))
        loss.backward()
        norm, lr = clip_and_step(model, optimizer, train, step)
        records.append({"step": step, "loss": float(loss), "lr": lr, "grad_norm": norm})
    return records
