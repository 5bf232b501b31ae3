"""Samplers of docs/MODEL.md (batched): flow-matching Euler with CFG and the rcm few-step sampler,
plus the teacher trajectories that the student is distilled from."""

from __future__ import annotations

import math

import torch


def shifted(u: float, s: float) -> float:
    return s * u / (1 + (s - 1) * u)


def euler_times(steps: int, shift: float) -> list[float]:
    return [shifted(1 - i / steps, shift) for i in range(steps + 1)]


def rcm_times(steps: int, sigma_max: float) -> list[float]:
    angles = [math.atan(sigma_max), 1.5, 1.4, 1.0][:steps]
    return [math.sin(a) / (math.sin(a) + math.cos(a)) for a in angles] + [0.0]


class Conditioner:
    """Text contexts for a batch of prompt ids, with the unconditional (empty prompt) twin."""

    def __init__(self, text, ids: torch.Tensor, uncond_ids: torch.Tensor):
        self.ctx, self.mask = text(ids)
        u_ctx, u_mask = text(uncond_ids.expand(ids.shape[0], -1))
        self.both_ctx = torch.cat([self.ctx, u_ctx])
        self.both_mask = torch.cat([self.mask, u_mask])


def guided_v(dit, x, t: float, cond: Conditioner, g: float, **kw):
    tt = torch.full((x.shape[0],), t, device=x.device)
    if g == 1.0:
        return dit(x, tt, cond.ctx, cond.mask, **kw)
    v = dit(torch.cat([x, x]), torch.cat([tt, tt]), cond.both_ctx, cond.both_mask, **kw)
    vc, vu = v.chunk(2)
    return vu + g * (vc - vu)


@torch.no_grad()
def euler(dit, noise, cond: Conditioner, steps: int, g: float, shift: float, times=None, **kw):
    ts = times if times is not None else euler_times(steps, shift)
    x = noise
    for i in range(len(ts) - 1):
        x = x + (ts[i + 1] - ts[i]) * guided_v(dit, x, ts[i], cond, g, **kw).float()
    return x


@torch.no_grad()
def rcm(dit, noises: list[torch.Tensor], cond: Conditioner, steps: int, sigma_max: float, **kw):
    """noises[0] starts the chain, noises[i + 1] is step i's fresh noise."""
    ts = rcm_times(steps, sigma_max)
    x = noises[0] * ts[0]
    x0 = x
    for i in range(steps):
        v = guided_v(dit, x, ts[i], cond, 1.0, **kw).float()
        x0 = x - ts[i] * v
        x = (1 - ts[i + 1]) * x0 + ts[i + 1] * noises[i + 1]
    return x0


def substep_grid(knots: list[float], substeps: list[int]) -> tuple[list[float], list[int]]:
    """Euler times through every knot (knots descending, ending at 0) and the knots' indices."""
    ts, marks = [knots[0]], [0]
    for a, b, n in zip(knots[:-1], knots[1:], substeps):
        for j in range(1, n + 1):
            ts.append(a + (b - a) * j / n)
        marks.append(len(ts) - 1)
    return ts, marks


@torch.no_grad()
def teacher_trajectories(teacher, noise, cond: Conditioner, knots, substeps, g: float):
    """Run the teacher's Euler+CFG ODE from noise * knots[0]; return the states at each knot but
    the last ([K, B, ...]) and the endpoint x0."""
    ts, marks = substep_grid(knots, substeps)
    x = noise * ts[0]
    states = [x]
    for i in range(len(ts) - 1):
        x = x + (ts[i + 1] - ts[i]) * guided_v(teacher, x, ts[i], cond, g).float()
        if (i + 1) in marks[1:-1]:
            states.append(x)
    return torch.stack(states), x
