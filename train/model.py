"""The framefleet model family in PyTorch, exactly as docs/MODEL.md defines it.

Module paths are the checkpoint keys: `TextEncoder().state_dict()` keys get the prefix `text.`,
`DiT` `dit.`, `VAEDecoder` `vae.` (see `prefixed_state_dict`). Tensors are batched here
(a leading batch axis B); the engine runs one item at a time, which is the same function.
"""

from __future__ import annotations

import math
import re

import torch
import torch.nn.functional as F
from torch import nn

SLA_BLOCK = 64


def gelu(x):
    return F.gelu(x, approximate="tanh")


# ---------------------------------------------------------------------------------------------
# tokenizer


class Tokenizer:
    def __init__(self, vocab: list[str], max_tokens: int):
        if vocab[:2] != ["<pad>", "<bos>"]:
            raise ValueError("vocab must start with <pad>, <bos>")
        self.vocab = list(vocab)
        self.ids = {w: i for i, w in enumerate(vocab)}
        self.max_tokens = max_tokens

    def words(self, prompt: str) -> list[str]:
        return [w for w in re.sub(r"[^a-z0-9 ]", " ", prompt.lower()).split(" ") if w]

    def encode(self, prompt: str) -> list[int]:
        words = self.words(prompt)
        if len(words) > self.max_tokens - 1:
            raise ValueError(f"prompt has {len(words)} words, at most {self.max_tokens - 1}")
        for w in words:
            if w not in self.ids:
                raise ValueError(f"word {w!r} is not in the vocabulary")
        ids = [1] + [self.ids[w] for w in words]
        return ids + [0] * (self.max_tokens - len(ids))

    def batch(self, prompts: list[str], device=None) -> torch.Tensor:
        return torch.tensor([self.encode(p) for p in prompts], dtype=torch.long, device=device)


# ---------------------------------------------------------------------------------------------
# text encoder


class TextAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x, key_mask):
        # x: [B, L, Dt]; key_mask: [B, L] bool
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask[:, None, None, :])
        return self.out(o.transpose(1, 2).reshape(b, n, d))


class TextMLP(nn.Module):
    def __init__(self, dim: int, ffn: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, ffn)
        self.fc2 = nn.Linear(ffn, dim)

    def forward(self, x):
        return self.fc2(gelu(self.fc1(x)))


class TextBlock(nn.Module):
    def __init__(self, dim: int, heads: int, ffn: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = TextAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = TextMLP(dim, ffn)

    def forward(self, x, key_mask):
        x = x + self.attn(self.norm1(x), key_mask)
        return x + self.mlp(self.norm2(x))


class TextEncoder(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        d = cfg["dim"]
        self.embed = nn.Embedding(cfg["vocab_size"], d)
        self.pos = nn.Embedding(cfg["max_tokens"], d)
        self.blocks = nn.ModuleList(
            TextBlock(d, cfg["heads"], cfg["ffn_dim"]) for _ in range(cfg["layers"])
        )
        self.norm = nn.LayerNorm(d, eps=1e-5)

    def forward(self, ids):
        # ids: [B, L] -> ctx [B, L, Dt], key mask [B, L]
        key_mask = ids != 0
        x = self.embed(ids) + self.pos.weight[None, : ids.shape[1]]
        for blk in self.blocks:
            x = blk(x, key_mask)
        return self.norm(x), key_mask


# ---------------------------------------------------------------------------------------------
# DiT


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        xf = x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (y * self.weight.float()).to(x.dtype)


def layer_norm(x, eps):
    return F.layer_norm(x, (x.shape[-1],), eps=eps)


def sinusoid(s, freq_dim: int):
    # s: [B] -> [B, freq_dim]
    half = freq_dim // 2
    f = torch.pow(10000.0, -torch.arange(half, dtype=torch.float64, device=s.device) / half)
    a = s.double()[:, None] * f[None]
    return torch.cat([torch.cos(a), torch.sin(a)], dim=-1)


def rope_tables(grid: tuple[int, int, int], head_dim: int, theta: float, device=None):
    """cos, sin: [N, hd/2], one angle per channel pair, parts (t, h, w) in that order."""
    third = head_dim // 6
    parts = (head_dim - 4 * third, 2 * third, 2 * third)
    ft, fh, fw = grid
    pos = torch.stack(
        torch.meshgrid(
            torch.arange(ft), torch.arange(fh), torch.arange(fw), indexing="ij"
        ),
        dim=-1,
    ).reshape(-1, 3).double()
    angles = []
    for axis, dp in enumerate(parts):
        j = torch.arange(dp // 2, dtype=torch.float64)
        angles.append(pos[:, axis : axis + 1] * torch.pow(float(theta), -2.0 * j / dp)[None])
    ang = torch.cat(angles, dim=-1)
    return torch.cos(ang).to(device), torch.sin(ang).to(device)


def apply_rope(x, cos, sin):
    # x: [B, H, N, hd]; cos, sin: [N, hd/2]; pairs (2j, 2j+1)
    a, b = x[..., 0::2], x[..., 1::2]
    c, s = cos.to(x.dtype), sin.to(x.dtype)
    return torch.stack([a * c - b * s, a * s + b * c], dim=-1).flatten(-2)


def sla_attention(q, k, v, top_k: float, proj_l_weight=None, block: int = SLA_BLOCK):
    """Sparse-linear attention as MODEL.md defines it. q, k, v: [B, H, N, hd] -> [B, H, N, hd]."""
    bsz, heads, n, hd = q.shape
    nb = (n + block - 1) // block
    k = k - k.mean(dim=2, keepdim=True)
    pad = nb * block - n
    counts = torch.full((nb,), float(block), device=q.device, dtype=q.dtype)
    counts[-1] = block - pad

    def pool(x):
        xp = F.pad(x, (0, 0, 0, pad))
        return xp.view(bsz, heads, nb, block, hd).sum(3) / counts[:, None]

    scores = pool(q).float() @ pool(k).float().transpose(-1, -2)  # [B, H, nb, nb]
    kc = min(max(int(math.floor(top_k * nb + 0.5)), 1), nb)
    # stable descending sort: equal scores keep the lower block index first
    order = torch.sort(scores, dim=-1, descending=True, stable=True).indices[..., :kc]
    sel = torch.zeros_like(scores, dtype=torch.bool).scatter_(-1, order, True)  # [B, H, nb, nb]
    token_block = torch.arange(n, device=q.device) // block
    mask = sel[:, :, token_block][:, :, :, token_block]  # [B, H, N, N]
    o_s = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    if proj_l_weight is None:
        return o_s
    phi_q = torch.softmax(q.float(), dim=-1)
    phi_k = torch.softmax(k.float(), dim=-1)
    vf = F.pad(v.float(), (0, 0, 0, pad)).view(bsz, heads, nb, block, hd)
    pk = F.pad(phi_k, (0, 0, 0, pad)).view(bsz, heads, nb, block, hd)  # padded rows are zero
    h_blk = pk.transpose(-1, -2) @ vf  # [B, H, nb, hd, hd]
    z_blk = pk.sum(3)  # [B, H, nb, hd]
    rest = (~sel).float()  # [B, H, nb(q), nb(k)]
    h = torch.einsum("bhqk,bhkde->bhqde", rest, h_blk)
    z = torch.einsum("bhqk,bhkd->bhqd", rest, z_blk)
    pq = F.pad(phi_q, (0, 0, 0, pad)).view(bsz, heads, nb, block, hd)
    num = pq @ h  # [B, H, nb, block, hd]
    den = (pq * z[:, :, :, None, :]).sum(-1, keepdim=True) + 1e-5
    o_l = (num / den).view(bsz, heads, nb * block, hd)[:, :, :n]
    return o_s + (o_l @ proj_l_weight.float().t()).to(o_s.dtype)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, eps: float, self_attention: bool):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.o = nn.Linear(dim, dim)
        self.norm_q = RMSNorm(dim, eps)
        self.norm_k = RMSNorm(dim, eps)
        if self_attention:
            self.proj_l = nn.Linear(dim // heads, dim // heads, bias=False)
            nn.init.zeros_(self.proj_l.weight)

    def split(self, x):
        b, n, d = x.shape
        return x.view(b, n, self.heads, d // self.heads).transpose(1, 2)

    def forward(self, x, ctx=None, key_mask=None, rope=None, attention="dense", top_k=1.0):
        # x: [B, N, D]; ctx: [B, L, D] (cross) -> [B, N, D]
        src = x if ctx is None else ctx
        q = self.split(self.norm_q(self.q(x)))
        k = self.split(self.norm_k(self.k(src)))
        v = self.split(self.v(src))
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        if attention == "sla" and ctx is None:
            o = sla_attention(q, k, v, top_k, self.proj_l.weight)
        else:
            mask = None if key_mask is None else key_mask[:, None, None, :]
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        b, h, n, hd = o.shape
        return self.o(o.transpose(1, 2).reshape(b, n, h * hd))


class FFN(nn.Module):
    def __init__(self, dim: int, ffn: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, ffn)
        self.fc2 = nn.Linear(ffn, dim)

    def forward(self, x):
        return self.fc2(gelu(self.fc1(x)))


class DiTBlock(nn.Module):
    def __init__(self, dim: int, heads: int, ffn: int, eps: float):
        super().__init__()
        self.eps = eps
        self.modulation = nn.Parameter(torch.randn(6, dim) / math.sqrt(dim))
        self.attn1 = Attention(dim, heads, eps, self_attention=True)
        self.norm3 = nn.LayerNorm(dim, eps=eps)
        self.attn2 = Attention(dim, heads, eps, self_attention=False)
        self.ffn = FFN(dim, ffn)

    def modulated_input(self, tok, m):
        s1, sc1 = (m + self.modulation)[:, 0], (m + self.modulation)[:, 1]
        return layer_norm(tok, self.eps) * (1 + sc1[:, None]) + s1[:, None]

    def forward(self, tok, m, c, key_mask, rope, attention="dense", top_k=1.0):
        # tok: [B, N, D]; m: [B, 6, D]; c: [B, L, D]
        s1, sc1, g1, s2, sc2, g2 = (m + self.modulation).unbind(1)
        h = layer_norm(tok, self.eps) * (1 + sc1[:, None]) + s1[:, None]
        tok = tok + g1[:, None] * self.attn1(h, rope=rope, attention=attention, top_k=top_k)
        tok = tok + self.attn2(self.norm3(tok), ctx=c, key_mask=key_mask)
        h = layer_norm(tok, self.eps) * (1 + sc2[:, None]) + s2[:, None]
        return tok + g2[:, None] * self.ffn(h)


class MLP2(nn.Module):
    def __init__(self, din: int, dim: int, act):
        super().__init__()
        self.fc1 = nn.Linear(din, dim)
        self.fc2 = nn.Linear(dim, dim)
        self.act = act

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Head(nn.Module):
    def __init__(self, dim: int, out: int):
        super().__init__()
        self.modulation = nn.Parameter(torch.randn(2, dim) / math.sqrt(dim))
        self.proj = nn.Linear(dim, out)


class DiT(nn.Module):
    def __init__(self, cfg: dict, text_dim: int):
        super().__init__()
        self.cfg = cfg
        d, c = cfg["dim"], cfg["in_channels"]
        self.patch = tuple(cfg["patch_size"])
        pdim = c * self.patch[0] * self.patch[1] * self.patch[2]
        self.eps = cfg["eps"]
        self.patch_embed = nn.Linear(pdim, d)
        self.text_embed = MLP2(text_dim, d, gelu)
        self.time_embed = MLP2(cfg["freq_dim"], d, F.silu)
        self.time_proj = nn.Linear(d, 6 * d)
        self.blocks = nn.ModuleList(
            DiTBlock(d, cfg["heads"], cfg["ffn_dim"], self.eps) for _ in range(cfg["layers"])
        )
        self.head = Head(d, pdim)
        self._rope_cache: dict = {}

    def grid(self, x):
        _, _, t, h, w = x.shape
        pt, ph, pw = self.patch
        return t // pt, h // ph, w // pw

    def patchify(self, x):
        # x: [B, C, T, H, W] -> [B, N, C*pt*ph*pw], tokens ordered frame, row, column
        b, c = x.shape[:2]
        ft, fh, fw = self.grid(x)
        pt, ph, pw = self.patch
        x = x.reshape(b, c, ft, pt, fh, ph, fw, pw).permute(0, 2, 4, 6, 1, 3, 5, 7)
        return x.reshape(b, ft * fh * fw, c * pt * ph * pw)

    def unpatchify(self, out, grid):
        b = out.shape[0]
        ft, fh, fw = grid
        pt, ph, pw = self.patch
        c = out.shape[-1] // (pt * ph * pw)
        x = out.reshape(b, ft, fh, fw, c, pt, ph, pw).permute(0, 4, 1, 5, 2, 6, 3, 7)
        return x.reshape(b, c, ft * pt, fh * ph, fw * pw)

    def rope(self, grid, device):
        key = (grid, str(device))
        if key not in self._rope_cache:
            hd = self.cfg["dim"] // self.cfg["heads"]
            self._rope_cache[key] = rope_tables(grid, hd, self.cfg["rope_theta"], device)
        return self._rope_cache[key]

    def conditioning(self, t, ctx):
        """(e [B, D], m [B, 6, D], c [B, L, D]) from t [B] and ctx [B, L, Dt]."""
        c = self.text_embed(ctx)
        freq = sinusoid(1000.0 * t, self.cfg["freq_dim"]).to(self.time_embed.fc1.weight.dtype)
        e = self.time_embed(freq)
        m = self.time_proj(F.silu(e)).view(-1, 6, self.cfg["dim"])
        return e, m, c

    def forward(self, x, t, ctx, key_mask, attention="dense", top_k=1.0, return_first_input=False):
        # x: [B, C, T, H', W'] latent; t: [B] in [0, 1]; ctx: [B, L, Dt] -> v like x
        grid = self.grid(x)
        rope = self.rope(grid, x.device)
        tok = self.patch_embed(self.patchify(x))
        e, m, c = self.conditioning(t, ctx)
        first = self.blocks[0].modulated_input(tok, m) if return_first_input else None
        for blk in self.blocks:
            tok = blk(tok, m, c, key_mask, rope, attention, top_k)
        mod = self.head.modulation[None] + e[:, None]
        shift, scale = mod[:, 0], mod[:, 1]
        out = self.head.proj(layer_norm(tok, self.eps) * (1 + scale[:, None]) + shift[:, None])
        v = self.unpatchify(out, grid)
        return (v, first) if return_first_input else v


# ---------------------------------------------------------------------------------------------
# VAE decoder


class ChannelRMSNorm(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))

    def forward(self, x):
        # x: [B, C, T, H, W], normalised over C per voxel
        return x * torch.rsqrt(x.pow(2).mean(1, keepdim=True) + 1e-6) * self.weight[:, None, None, None]


class CausalConv3d(nn.Conv3d):
    def __init__(self, cin: int, cout: int, kernel: tuple[int, int, int]):
        super().__init__(cin, cout, kernel)

    def forward(self, x):
        kt, kh, kw = self.kernel_size
        x = F.pad(x, (kw // 2, kw // 2, kh // 2, kh // 2, kt - 1, 0))
        return super().forward(x)


class ResBlock(nn.Module):
    def __init__(self, a: int, b: int):
        super().__init__()
        self.norm1 = ChannelRMSNorm(a)
        self.conv1 = CausalConv3d(a, b, (3, 3, 3))
        self.norm2 = ChannelRMSNorm(b)
        self.conv2 = CausalConv3d(b, b, (3, 3, 3))
        self.skip = CausalConv3d(a, b, (1, 1, 1)) if a != b else None

    def forward(self, x):
        y = self.conv2(F.silu(self.norm2(self.conv1(F.silu(self.norm1(x))))))
        return y + (self.skip(x) if self.skip is not None else x)


class UpStage(nn.Module):
    def __init__(self, a: int, b: int, temporal: bool):
        super().__init__()
        self.res = ResBlock(a, b)
        self.time = CausalConv3d(b, 2 * b, (1, 1, 1)) if temporal else None
        self.space = CausalConv3d(b, b, (1, 3, 3))

    def forward(self, x):
        x = self.res(x)
        if self.time is not None:
            bsz, c, t, h, w = x.shape
            y = self.time(x).view(bsz, 2, c, t, h, w)  # frame 2t = y[:, 0], 2t + 1 = y[:, 1]
            x = y.permute(0, 2, 3, 1, 4, 5).reshape(bsz, c, 2 * t, h, w)[:, :, 1:]
        x = F.interpolate(x, scale_factor=(1, 2, 2), mode="nearest")
        return self.space(x)


class VAEDecoder(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        ch = cfg["channels"]
        self.scaling = cfg.get("scaling", {"mean": 0.0, "std": 1.0})
        self.conv_in = CausalConv3d(cfg["latent_channels"], ch[0], (3, 3, 3))
        self.mid = ResBlock(ch[0], ch[0])
        self.up = nn.ModuleList(
            UpStage(ch[i], ch[i + 1], cfg["temporal_upsample"][i]) for i in range(3)
        )
        self.norm_out = ChannelRMSNorm(ch[3])
        self.conv_out = CausalConv3d(ch[3], 3, (1, 3, 3))

    def forward(self, z):
        """z: [B, C, T, h, w] (already un-normalised) -> rgb in [-1, 1] scale, [B, 3, F, H, W]."""
        x = self.mid(self.conv_in(z))
        for stage in self.up:
            x = stage(x)
        return self.conv_out(F.silu(self.norm_out(x)))

    def decode(self, z_norm):
        """Normalised latent -> uint8 frames [B, F, H, W, 3] as the engine outputs them."""
        z = z_norm * self.scaling["std"] + self.scaling["mean"]
        y = self.forward(z)
        rgb = torch.clamp((y + 1) * 127.5, 0, 255).round().to(torch.uint8)
        return rgb.permute(0, 2, 3, 4, 1)


def prefixed_state_dict(module: nn.Module, prefix: str, skip_proj_l: bool = False) -> dict:
    out = {}
    for k, v in module.state_dict().items():
        if skip_proj_l and k.endswith("attn1.proj_l.weight"):
            continue
        out[f"{prefix}.{k}"] = v
    return out


def load_prefixed(module: nn.Module, tensors: dict, prefix: str) -> None:
    own = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    missing, unexpected = module.load_state_dict(
        {k: v.float() for k, v in own.items()}, strict=False
    )
    missing = [m for m in missing if not m.endswith("proj_l.weight")]
    if missing or unexpected:
        raise ValueError(f"{prefix}: missing {missing[:5]}, unexpected {unexpected[:5]}")
