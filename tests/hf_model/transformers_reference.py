"""The three Transformers architectures tessera exports to, written from Transformers' module
names and equations (modeling_gpt2.py, modeling_llama.py, modeling_stablelm.py), not from
tessera's: a model directory is read the way `from_pretrained` reads it (config.json, then the
safetensors weights by their Transformers names) and its logits computed in float64.

  GPT2LMHeadModel      h = wte[ids] + wpe[pos]; per block h += c_proj(attn(ln_1(h))) with
                       Conv1D (y = x W + b, W stored [in, out]) and c_attn = [q | k | v];
                       h += mlp.c_proj(gelu_new(mlp.c_fc(ln_2(h)))); logits = ln_f(h) wte^T
  LlamaForCausalLM     RMSNorm (w * x / sqrt(mean(x^2) + eps)); rotary with inv_freq =
                       theta^(-arange(0, d, 2)/d), cos/sin of cat(freqs, freqs), rotate_half;
                       mlp = down_proj(silu(gate_proj(x)) * up_proj(x)); lm_head
  StableLmForCausalLM  the same with nn.LayerNorm (weight and bias) and partial_rotary_factor

The safetensors reader here is the format's spec in a few lines (8-byte length, JSON header,
data_offsets), independent of tessera's C++ reader.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np
import torch

DTYPE = torch.float64


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    data = path.read_bytes()
    (header_length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_length])
    start = 8 + header_length
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        raw = data[start + begin:start + end]
        if entry["dtype"] == "F32":
            values = np.frombuffer(raw, dtype="<f4")
        elif entry["dtype"] == "F16":
            values = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif entry["dtype"] == "BF16":
            values = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise ValueError(f"{path}: {name} is {entry['dtype']}")
        tensors[name] = values.reshape(entry["shape"])
    return tensors


def read_model_directory(directory: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    config = json.loads((directory / "config.json").read_text())
    index = directory / "model.safetensors.index.json"
    files = sorted(set(json.loads(index.read_text())["weight_map"].values())) \
        if index.exists() else ["model.safetensors"]
    weights = {}
    for file in files:
        for name, values in read_safetensors(directory / file).items():
            weights[name] = torch.tensor(np.array(values), dtype=DTYPE)
    return config, weights


def causal_attention(q, k, v):
    """q, k, v [heads, seq, head_dim] -> [seq, heads * head_dim]."""
    heads, seq, head_dim = q.shape
    scores = q @ k.transpose(-1, -2) / math.sqrt(head_dim)
    future = torch.triu(torch.ones(seq, seq, dtype=torch.bool), diagonal=1)
    probs = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
    return (probs @ v).transpose(0, 1).reshape(seq, heads * head_dim)


def layer_norm(x, weight, bias, eps):
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), weight, bias, eps)


def gpt2_logits(config: dict, w: dict[str, torch.Tensor], ids: list[int]) -> torch.Tensor:
    def get(name):  # save_pretrained writes "transformer.", the Hub's gpt2 files do not
        return w[name] if name in w else w[name.removeprefix("transformer.")]

    heads, eps = config["n_head"], config["layer_norm_epsilon"]
    seq = len(ids)
    h = get("transformer.wte.weight")[ids] + get("transformer.wpe.weight")[:seq]
    for i in range(config["n_layer"]):
        p = f"transformer.h.{i}."
        x = layer_norm(h, get(p + "ln_1.weight"), get(p + "ln_1.bias"), eps)
        qkv = x @ get(p + "attn.c_attn.weight") + get(p + "attn.c_attn.bias")  # Conv1D
        q, k, v = (t.reshape(seq, heads, -1).transpose(0, 1) for t in qkv.chunk(3, dim=-1))
        h = h + causal_attention(q, k, v) @ get(p + "attn.c_proj.weight") + \
            get(p + "attn.c_proj.bias")
        x = layer_norm(h, get(p + "ln_2.weight"), get(p + "ln_2.bias"), eps)
        x = x @ get(p + "mlp.c_fc.weight") + get(p + "mlp.c_fc.bias")
        x = 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
        h = h + x @ get(p + "mlp.c_proj.weight") + get(p + "mlp.c_proj.bias")
    h = layer_norm(h, get("transformer.ln_f.weight"), get("transformer.ln_f.bias"), eps)
    return h @ get("transformer.wte.weight").t()


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rotary_logits(config: dict, w: dict[str, torch.Tensor], ids: list[int]) -> torch.Tensor:
    llama = config["architectures"][0] == "LlamaForCausalLM"
    heads, hidden = config["num_attention_heads"], config["hidden_size"]
    head_dim = config.get("head_dim", hidden // heads)
    rotary_dim = int(head_dim * config.get("partial_rotary_factor", 1.0))
    seq = len(ids)

    def norm(x, prefix):
        if llama:
            variance = (x * x).mean(-1, keepdim=True)
            return w[prefix + ".weight"] * (x * torch.rsqrt(variance + config["rms_norm_eps"]))
        return layer_norm(x, w[prefix + ".weight"], w[prefix + ".bias"], config["layer_norm_eps"])

    inv_freq = 1.0 / (config.get("rope_theta", 10000.0) **
                      (torch.arange(0, rotary_dim, 2, dtype=DTYPE) / rotary_dim))
    freqs = torch.arange(seq, dtype=DTYPE)[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()

    def rotary(t):  # [heads, seq, head_dim]: the first rotary_dim dimensions turn
        turned, rest = t[..., :rotary_dim], t[..., rotary_dim:]
        return torch.cat((turned * cos + rotate_half(turned) * sin, rest), dim=-1)

    h = w["model.embed_tokens.weight"][ids]
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        x = norm(h, p + "input_layernorm")
        q, k, v = (
            (x @ w[p + f"self_attn.{name}_proj.weight"].t()).reshape(seq, heads, head_dim)
            .transpose(0, 1) for name in ("q", "k", "v"))
        h = h + causal_attention(rotary(q), rotary(k), v) @ w[p + "self_attn.o_proj.weight"].t()
        x = norm(h, p + "post_attention_layernorm")
        gate = x @ w[p + "mlp.gate_proj.weight"].t()
        up = x @ w[p + "mlp.up_proj.weight"].t()
        h = h + (torch.nn.functional.silu(gate) * up) @ w[p + "mlp.down_proj.weight"].t()
    h = norm(h, "model.norm")
    head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    return h @ head.t()


def logits(directory: Path, ids: list[int]) -> torch.Tensor:
    """[len(ids), vocab] logits of the model directory on one sequence of token ids."""
    config, weights = read_model_directory(directory)
    architecture = config["architectures"][0]
    if architecture == "GPT2LMHeadModel":
        return gpt2_logits(config, weights, ids)
    if architecture in ("LlamaForCausalLM", "StableLmForCausalLM"):
        return rotary_logits(config, weights, ids)
    raise ValueError(f"{directory}: unknown architecture {architecture}")
