"""The VAE's encoder (training only; the decoder is model.VAEDecoder, the exported half).

Mirror of the decoder: 8x spatial by three strided 4x4 convolutions, 4x temporal by two causal
pair merges (frame 0 alone, then frames (2t-1, 2t) -> latent frame t), so latent frame t covers
exactly the frames the decoder makes from it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model import ChannelRMSNorm, CausalConv3d, VAEDecoder


class EncRes(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.norm1 = ChannelRMSNorm(c)
        self.conv1 = CausalConv3d(c, c, (3, 3, 3))
        self.norm2 = ChannelRMSNorm(c)
        self.conv2 = CausalConv3d(c, c, (3, 3, 3))

    def forward(self, x):
        return x + self.conv2(F.silu(self.norm2(self.conv1(F.silu(self.norm1(x))))))


class TimeMerge(nn.Module):
    """[B, C, T, H, W] -> [B, C, (T + 1) / 2, H, W]: (x0, x0), (x1, x2), (x3, x4), ..."""

    def __init__(self, c: int):
        super().__init__()
        self.proj = nn.Conv3d(2 * c, c, 1)

    def forward(self, x):
        b, c, t, h, w = x.shape
        x = torch.cat([x[:, :, :1], x], dim=2)  # T + 1 frames, even
        x = x.view(b, c, (t + 1) // 2, 2, h, w).permute(0, 3, 1, 2, 4, 5).reshape(b, 2 * c, -1, h, w)
        return self.proj(x)


class Encoder(nn.Module):
    def __init__(self, latent: int, widths=(32, 64, 128)):
        super().__init__()
        w1, w2, w3 = widths
        self.down1 = nn.Conv3d(3, w1, (1, 4, 4), stride=(1, 2, 2), padding=(0, 1, 1))
        self.res1 = EncRes(w1)
        self.time1 = TimeMerge(w1)
        self.down2 = nn.Conv3d(w1, w2, (1, 4, 4), stride=(1, 2, 2), padding=(0, 1, 1))
        self.res2 = EncRes(w2)
        self.time2 = TimeMerge(w2)
        self.down3 = nn.Conv3d(w2, w3, (1, 4, 4), stride=(1, 2, 2), padding=(0, 1, 1))
        self.res3 = EncRes(w3)
        self.norm = ChannelRMSNorm(w3)
        self.out = nn.Conv3d(w3, 2 * latent, 1)

    def forward(self, x):
        # x: [B, 3, F, H, W] in [-1, 1] -> mean, logvar [B, C, T, H/8, W/8]
        x = self.time1(self.res1(self.down1(x)))
        x = self.time2(self.res2(self.down2(x)))
        x = self.res3(self.down3(x))
        mu, logvar = self.out(F.silu(self.norm(x))).chunk(2, dim=1)
        return mu, logvar.clamp(-30, 20)


class VAE(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        self.encoder = Encoder(cfg["latent_channels"])
        self.decoder = VAEDecoder(cfg)


def to_unit(frames_u8: torch.Tensor) -> torch.Tensor:
    """uint8 [B, F, H, W, 3] -> float [B, 3, F, H, W] in [-1, 1]."""
    return frames_u8.permute(0, 4, 1, 2, 3).float() / 127.5 - 1


def vae_loss(vae: VAE, frames_u8: torch.Tensor, kl_weight: float = 1e-4):
    x = to_unit(frames_u8)
    mu, logvar = vae.encoder(x)
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    y = vae.decoder(z)
    # object pixels are few: weight pixels that differ from the clip's corner (background) colour
    bg = x[:, :, :1, :1, :1]
    obj = ((x - bg).abs().sum(1, keepdim=True) > 0.05).float()
    w = 1 + 4 * obj
    err = y.float() - x
    rec = (w * (err.pow(2) + 0.1 * err.abs())).mean()
    kl = 0.5 * (mu.float().pow(2) + logvar.float().exp() - 1 - logvar.float()).mean()
    return rec + kl_weight * kl, {"rec": float(rec.detach()), "kl": float(kl.detach())}
