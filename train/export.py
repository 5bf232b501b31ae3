"""Export the trained checkpoints as a model directory of docs/MODEL.md (models/tiny-shapes/)."""

from __future__ import annotations

import json
import os
import struct
import zlib

import numpy as np
import torch
from safetensors.torch import save_file

from model import DiT, TextEncoder, VAEDecoder, prefixed_state_dict
from render import VOCAB


def _tensors(module, prefix, dtype, skip_proj_l=False):
    return {k: v.detach().to(dtype).contiguous().cpu()
            for k, v in prefixed_state_dict(module, prefix, skip_proj_l).items()}


def export(run, out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    cfg = json.loads(json.dumps(run.cfg))
    text = TextEncoder(cfg["text"])
    dit = DiT(cfg["dit"], cfg["text"]["dim"])
    t_st = run.load("teacher.pt")
    text.load_state_dict(t_st["text"])
    dit.load_state_dict(t_st["dit"])
    v_st = run.load("vae.pt")
    vae = VAEDecoder(cfg["vae"])
    vae.load_state_dict(v_st["decoder"])
    cfg["vae"]["scaling"] = v_st["scaling"]
    tc = os.path.join(run.ckpt, "teacache.json")
    if os.path.exists(tc):
        with open(tc) as f:
            cfg["teacache"]["coefficients"] = json.load(f)["coefficients"]
    save_file(_tensors(text, "text", torch.float32), os.path.join(out_dir, "text_encoder.safetensors"))
    save_file(_tensors(dit, "dit", torch.float16, skip_proj_l=True), os.path.join(out_dir, "dit.safetensors"))
    save_file(_tensors(vae, "vae", torch.float32), os.path.join(out_dir, "vae_decoder.safetensors"))
    s_st = run.load("student_sla.pt") or run.load("student.pt")
    if s_st is not None:
        student = DiT(cfg["dit"], cfg["text"]["dim"])
        student.load_state_dict(s_st["dit"])
        save_file(_tensors(student, "dit", torch.float16), os.path.join(out_dir, "student.safetensors"))
    else:
        del cfg["profiles"]["turbo"]
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    with open(os.path.join(out_dir, "vocab.txt"), "w") as f:
        f.write("\n".join(VOCAB) + "\n")
    sizes = {n: os.path.getsize(os.path.join(out_dir, n)) for n in sorted(os.listdir(out_dir))}
    print(json.dumps({"phase": "export", "dir": out_dir, "bytes": sizes, "total": sum(sizes.values())}))


def write_png(path: str, rgb: np.ndarray) -> None:
    """uint8 [H, W, 3] -> PNG (zlib only, no imaging library needed)."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 6)))
        f.write(chunk(b"IEND", b""))


def load_export(model_dir: str, device="cpu"):
    """(cfg, text, teacher, student | None, vae) from a model directory, weights as fp32."""
    from safetensors.torch import load_file

    from model import load_prefixed

    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)

    def part(name):
        return load_file(os.path.join(model_dir, name))

    text = TextEncoder(cfg["text"])
    load_prefixed(text, part("text_encoder.safetensors"), "text")
    teacher = DiT(cfg["dit"], cfg["text"]["dim"])
    load_prefixed(teacher, part("dit.safetensors"), "dit")
    student = None
    if os.path.exists(os.path.join(model_dir, "student.safetensors")):
        student = DiT(cfg["dit"], cfg["text"]["dim"])
        load_prefixed(student, part("student.safetensors"), "dit")
    vae = VAEDecoder(cfg["vae"])
    load_prefixed(vae, part("vae_decoder.safetensors"), "vae")
    return cfg, *(m.to(device).eval() if m is not None else None for m in (text, teacher, student, vae))
