#!/usr/bin/env python3
"""Train tiny-shapes: one command per phase, each resumable from the checkpoints in --ckpt
(train/checkpoints/, kept out of git). See train/README.md for the recipe and its reasons.

    python3 train/train.py vae --minutes 2
    python3 train/train.py teacher --minutes 5
    python3 train/train.py distill --minutes 3
    python3 train/train.py sla --minutes 1
    python3 train/train.py teacache
    python3 train/train.py check
    python3 train/train.py export [--export-dir models/tiny-shapes]
    python3 train/train.py all --plan vae=2,teacher=4,distill=2,sla=0.5   (then teacache, check, export)
    python3 train/train.py import [--from models/tiny-shapes]   (checkpoints from an export)

--smoke runs every phase on a tiny model and tiny clips (a CPU test of the code paths).
Every phase prints JSON lines; `check` writes reports/check.json under --ckpt.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from analyze import score  # noqa: E402
from data import TRAIN_SEED_BASE, ClipRenderer, suite  # noqa: E402
from model import DiT, TextEncoder, Tokenizer  # noqa: E402
from render import VOCAB, training_combos, caption  # noqa: E402
from sample import Conditioner, euler, rcm, rcm_times, teacher_trajectories  # noqa: E402
from vae import VAE, to_unit, vae_loss  # noqa: E402

DEV = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def amp():
    """bf16 autocast on the GPU; plain fp32 on the CPU (smoke runs)."""
    if DEV.type == "cuda":
        return torch.autocast("cuda", torch.bfloat16)
    return contextlib.nullcontext()


def make_config(smoke: bool) -> dict:
    full = not smoke
    return {
        "format": "framefleet-dit-v1",
        "name": "tiny-shapes",
        "text": {"vocab_size": len(VOCAB), "max_tokens": 16, "dim": 128 if full else 32,
                 "layers": 2, "heads": 4 if full else 2, "ffn_dim": 512 if full else 64},
        "dit": {"in_channels": 8 if full else 4, "patch_size": [1, 1, 1],
                "dim": 192 if full else 48, "layers": 8 if full else 2, "heads": 3 if full else 2,
                "ffn_dim": 512 if full else 96, "freq_dim": 256 if full else 32,
                "rope_theta": 10000, "eps": 1e-6},
        "vae": {"latent_channels": 8 if full else 4,
                "channels": [64, 32, 16, 8] if full else [16, 8, 8, 4],
                "temporal_upsample": [True, True, False], "scaling": {"mean": 0.0, "std": 1.0}},
        "video": {"width": 128 if full else 32, "height": 128 if full else 32,
                  "frames": 33 if full else 9, "fps": 16, "spatial_multiple": 8,
                  "max_width": 512, "max_height": 512, "max_frames": 129},
        "sampling": {"steps": 50, "guidance_scale": 2.0, "shift": 3.0, "sigma_max": 80.0},
        "profiles": {
            "baseline": {"weights": "dit", "sampler": "euler", "steps": 50, "guidanceScale": 2.0,
                         "attention": "dense", "linear": "fp32", "teaCache": 0},
            "turbo": {"weights": "student", "sampler": "rcm", "steps": 4, "guidanceScale": 1.0,
                      "attention": "sla", "slaTopK": 0.1, "linear": "w8a8", "teaCache": 0},
        },
        "teacache": {"coefficients": [0.0, 1.0, 0.0]},
    }


def compile_blocks(dit):
    """Compile each DiT block (one graph, shared by all blocks): the model is small enough that
    unfused elementwise kernels, not matrix work, bound a training step. Falls back to eager
    execution if compiling fails on this machine."""
    for blk in dit.blocks:
        blk.compile()
    try:
        with amp():
            tok = torch.randn(2, 64, dit.cfg["dim"], device=DEV, requires_grad=True)
            m = torch.randn(2, 6, dit.cfg["dim"], device=DEV)
            c = torch.randn(2, 4, dit.cfg["dim"], device=DEV)
            rope = dit.rope((1, 8, 8), DEV)
            dit.blocks[0](tok, m, c, torch.ones(2, 4, dtype=torch.bool, device=DEV), rope).float().sum().backward()
        dit.zero_grad(set_to_none=True)
        log(compile="blocks")
    except Exception as e:  # noqa: BLE001 - any compiler failure means: train eagerly
        for blk in dit.blocks:
            blk._compiled_call_impl = None
        dit.zero_grad(set_to_none=True)
        log(compile="failed", error=str(e)[:300])


def log(**kw):
    print(json.dumps(kw), flush=True)


class Run:
    def __init__(self, args):
        self.args = args
        self.smoke = args.smoke
        self.ckpt = args.ckpt
        os.makedirs(os.path.join(self.ckpt, "reports"), exist_ok=True)
        self.cfg = make_config(self.smoke)
        v = self.cfg["video"]
        self.video = (v["frames"], v["height"], v["width"])
        self.latent_shape = (self.cfg["dit"]["in_channels"], 1 + (v["frames"] - 1) // 4,
                             v["height"] // 8, v["width"] // 8)
        self.tok = Tokenizer(list(VOCAB), self.cfg["text"]["max_tokens"])
        self.uncond = self.tok.batch([""], DEV)
        self._renderer = None

    # ------------------------------------------------------------------ checkpoints
    def path(self, name):
        return os.path.join(self.ckpt, name)

    def save(self, name, obj):
        half = {k: ({n: t.detach().to(torch.float16).cpu() for n, t in v.items()}
                    if isinstance(v, dict) and v and isinstance(next(iter(v.values())), torch.Tensor)
                    else v) for k, v in obj.items()}
        torch.save(half, self.path(name) + ".tmp")
        os.replace(self.path(name) + ".tmp", self.path(name))

    def load(self, name):
        p = self.path(name)
        if not os.path.exists(p):
            return None
        obj = torch.load(p, map_location="cpu")
        return {k: ({n: t.float() for n, t in v.items()}
                    if isinstance(v, dict) and v and isinstance(next(iter(v.values())), torch.Tensor)
                    else v) for k, v in obj.items()}

    def renderer(self):
        if self._renderer is None:
            self._renderer = ClipRenderer(*self.video, capacity=64 if self.smoke else 1024)
        return self._renderer

    def vae(self):
        vae = VAE(self.cfg["vae"]).to(DEV)
        st = self.load("vae.pt")
        if st is not None:
            if "encoder" in st:  # absent when the checkpoint was imported from an export
                vae.encoder.load_state_dict(st["encoder"])
            vae.decoder.load_state_dict(st["decoder"])
            vae.decoder.scaling = st["scaling"]
            self.cfg["vae"]["scaling"] = st["scaling"]
        return vae, st

    def teacher(self):
        text = TextEncoder(self.cfg["text"]).to(DEV)
        dit = DiT(self.cfg["dit"], self.cfg["text"]["dim"]).to(DEV)
        st = self.load("teacher.pt")
        if st is not None:
            text.load_state_dict(st["text"])
            dit.load_state_dict(st["dit"])
        return text, dit, st

    def student(self, name="student.pt"):
        st = self.load(name)
        if st is None:
            return None, None
        dit = DiT(self.cfg["dit"], self.cfg["text"]["dim"]).to(DEV)
        dit.load_state_dict(st["dit"])
        return dit, st

    # ------------------------------------------------------------------ data
    def latents(self, vae, n):
        """Encode n fresh training clips: normalised latents [n, C, T, h, w] (fp16) and ids."""
        chunk = self.renderer().shape[0]
        zs, ids = [], []
        sc = self.cfg["vae"]["scaling"]
        t0 = time.time()
        for s in range(0, n, chunk):
            seeds = list(range(TRAIN_SEED_BASE + s, TRAIN_SEED_BASE + min(n, s + chunk)))
            frames, caps = self.renderer().render(seeds)
            f = torch.from_numpy(frames).to(DEV)
            with torch.no_grad(), amp():
                for b in range(0, len(seeds), 64):
                    mu, _ = vae.encoder(to_unit(f[b : b + 64]))
                    zs.append(((mu.float() - sc["mean"]) / sc["std"]).half())
            ids.append(self.tok.batch(caps, DEV))
        log(phase="latents", clips=n, seconds=round(time.time() - t0, 1))
        return torch.cat(zs), torch.cat(ids)

    # ------------------------------------------------------------------ phases
    def phase_decoder(self, minutes):
        """Fine-tune the decoder alone: the encoder, and so the teacher's latents, stay fixed."""
        self.phase_vae(minutes, decoder_only=True)

    def phase_vae(self, minutes, decoder_only=False):
        vae, st = self.vae()
        if decoder_only and st is None:
            raise SystemExit("decoder: no vae.pt")
        if st is not None and "encoder" not in st:
            raise SystemExit("vae: vae.pt was imported from an export and has no encoder to train against")
        step = st["step"] if st else 0
        n = 64 if self.smoke else 2048
        chunk, parts = self.renderer().shape[0], []
        for s in range(0, n, chunk):
            seeds = range(TRAIN_SEED_BASE + 7_000_000 + s, TRAIN_SEED_BASE + 7_000_000 + min(n, s + chunk))
            parts.append(torch.from_numpy(self.renderer().render(list(seeds))[0]).to(DEV))
        data = torch.cat(parts)
        vae.encoder.requires_grad_(not decoder_only)
        trained = [p for p in vae.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(trained, lr=2e-4 if decoder_only else 4e-4, weight_decay=0.0)
        bs = 4 if self.smoke else 8
        t_end = time.time() + 60 * minutes
        gen = torch.Generator(device=DEV).manual_seed(step)
        while time.time() < t_end:
            idx = torch.randint(0, n, (bs,), device=DEV, generator=gen)
            with amp():
                loss, parts = vae_loss(vae, data[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trained, 1.0)
            opt.step()
            step += 1
            if step % 200 == 0:
                log(phase="vae", step=step, loss=round(float(loss.detach()), 5), **parts)
        # latent statistics over a sample of clips, then reconstruction PSNR
        with torch.no_grad(), amp():
            mus = torch.cat([vae.encoder(to_unit(data[i : i + 16]))[0].float() for i in range(0, min(n, 256), 16)])
            scaling = st["scaling"] if decoder_only else {"mean": float(mus.mean()), "std": float(mus.std())}
            rec = vae.decoder(mus[:16]).float()
        x = to_unit(data[:16])
        mse = float(((rec.clamp(-1, 1) - x) ** 2).mean()) / 4  # in [0, 1] units
        psnr = 10 * math.log10(1 / max(mse, 1e-12))
        log(phase="vae", step=step, done=True, psnr=round(psnr, 2), **scaling)
        self.save("vae.pt", {"encoder": vae.encoder.state_dict(), "decoder": vae.decoder.state_dict(),
                             "scaling": scaling, "step": step, "psnr": psnr})

    def phase_import(self, _minutes=0):
        """Checkpoints from an exported model directory (--from, default models/tiny-shapes), for a
        machine without the training checkpoints: the teacher and text encoder, the VAE decoder and
        its latent scaling, and the export's student as student.pt (a warm start for distilling
        again, e.g. at another guidance scale). The export has no VAE encoder, so the vae, decoder
        and teacher phases still need the original vae.pt; distill, sla, teacache, check and export
        do not. Existing checkpoints are left alone."""
        from export import load_export

        src = self.args.src
        cfg, text, teacher, student, vae = load_export(src)
        for part in ("dit", "text"):
            if cfg[part] != self.cfg[part]:
                raise SystemExit(f"import: {src} has another {part} architecture than this recipe")
        wrote = []
        if self.load("teacher.pt") is None:
            self.save("teacher.pt", {"text": text.state_dict(), "dit": teacher.state_dict(), "step": 0})
            wrote.append("teacher.pt")
        if self.load("vae.pt") is None:
            self.save("vae.pt", {"decoder": vae.state_dict(), "scaling": cfg["vae"]["scaling"], "step": 0})
            wrote.append("vae.pt")
        if student is not None and self.load("student.pt") is None:
            self.save("student.pt", {"dit": student.state_dict(), "step": 0})
            wrote.append("student.pt")
        tc = self.path("teacache.json")
        if not os.path.exists(tc) and cfg.get("teacache", {}).get("coefficients"):
            with open(tc, "w") as f:
                json.dump({"coefficients": cfg["teacache"]["coefficients"], "points": 0}, f)
            wrote.append("teacache.json")
        log(phase="import", src=src, wrote=wrote, guidance=cfg["sampling"]["guidance_scale"])

    def phase_teacher(self, minutes):
        vae, vst = self.vae()
        if vst is None or "encoder" not in vst:
            raise SystemExit("teacher: no trained VAE encoder in vae.pt; run the vae phase first")
        text, dit, st = self.teacher()
        step = st["step"] if st else 0
        lat, ids = self.latents(vae, 256 if self.smoke else 16384)
        del vae
        ema = copy.deepcopy(torch.nn.ModuleDict({"text": text, "dit": dit})).requires_grad_(False)
        if st is None:
            with torch.no_grad():
                dit.head.proj.weight.zero_()
                dit.head.proj.bias.zero_()
                dit.time_proj.weight.zero_()
                dit.time_proj.bias.zero_()
        params = list(text.parameters()) + list(dit.parameters())
        if self.args.compile:
            compile_blocks(dit)
        base_lr = 4e-4 if st is None else 2e-4
        opt = torch.optim.AdamW(params, lr=base_lr, betas=(0.9, 0.99), weight_decay=0.0)
        bs = 8 if self.smoke else 64
        shift = self.cfg["sampling"]["shift"]
        t_start = time.time()
        budget = 60 * minutes
        gen = torch.Generator(device=DEV).manual_seed(1000 + step)
        i, losses = 0, []
        while time.time() - t_start < budget:
            frac = (time.time() - t_start) / budget
            lr = base_lr * min(1.0, (i + 1) / 200) * (1.0 if frac < 0.6 else max(0.05, (1 - frac) / 0.4))
            for g in opt.param_groups:
                g["lr"] = lr
            idx = torch.randint(0, lat.shape[0], (bs,), device=DEV, generator=gen)
            x0 = lat[idx].float()
            b_ids = ids[idx].clone()
            drop = torch.rand(bs, device=DEV, generator=gen) < 0.1
            b_ids[drop] = self.uncond[0]
            u = torch.rand(bs, device=DEV, generator=gen)
            t = shift * u / (1 + (shift - 1) * u)
            eps = torch.randn(x0.shape, device=DEV, generator=gen)
            tb = t.view(-1, 1, 1, 1, 1)
            xt = (1 - tb) * x0 + tb * eps
            with amp():
                ctx, mask = text(b_ids)
                v = dit(xt, t, ctx, mask)
            loss = F.mse_loss(v.float(), eps - x0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            i += 1
            step += 1
            self.ema_update(ema, {"text": text, "dit": dit}, i, 0.999)
            losses.append(float(loss))
            if i % 250 == 0:
                log(phase="teacher", step=step, loss=round(float(np.mean(losses[-250:])), 5), lr=lr,
                    elapsed=round(time.time() - t_start))
        log(phase="teacher", step=step, done=True, loss=round(float(np.mean(losses[-200:])), 5),
            steps_this_run=i, samples_per_s=round(i * bs / (time.time() - t_start), 1))
        self.save("teacher.pt", {"text": ema["text"].state_dict(), "dit": ema["dit"].state_dict(),
                                 "step": step})

    @staticmethod
    def ema_update(ema, live, i, decay):
        d = min(decay, (1 + i) / (10 + i))
        with torch.no_grad():
            for name, mod in live.items():
                for pe, p in zip(ema[name].parameters(), mod.parameters()):
                    pe.lerp_(p, 1 - d)

    def distill_loop(self, minutes, student, params_groups, name, attention, ema_decay):
        """Consistency targets from the teacher's ODE: the student maps every state of a teacher
        trajectory at the rcm times to the trajectory's endpoint."""
        text, teacher, _ = self.teacher()
        teacher.requires_grad_(False)
        text.requires_grad_(False)
        s = self.cfg["sampling"]
        knots = rcm_times(4, s["sigma_max"])
        substeps = [2, 2, 4, 12]
        g = s["guidance_scale"]
        combos = training_combos()
        opt = torch.optim.AdamW(params_groups, betas=(0.9, 0.99), weight_decay=0.0)
        lrs = [pg["lr"] for pg in opt.param_groups]
        ema = copy.deepcopy(student).requires_grad_(False)
        st = self.load(name)
        step = st["step"] if st else 0
        gen = torch.Generator(device=DEV).manual_seed(5000 + step)
        rng = np.random.default_rng(step)
        buf_x, buf_t, buf_ids, buf_x0 = [], [], [], []
        n_gen = 16 if self.smoke else 256
        bs = 8 if self.smoke else 48
        t_start, i, losses, rounds = time.time(), 0, [], 0
        budget = 60 * minutes
        while time.time() - t_start < budget:
            picks = rng.integers(len(combos), size=n_gen)
            ids = self.tok.batch([caption(*combos[p]) for p in picks], DEV)
            noise = torch.randn((n_gen, *self.latent_shape), device=DEV, generator=gen)
            with torch.no_grad(), amp():
                cond = Conditioner(text, ids, self.uncond)
                states, x0 = teacher_trajectories(teacher, noise, cond, knots, substeps, g)
            for k in range(states.shape[0]):
                buf_x.append(states[k].half())
                buf_t.append(torch.full((n_gen,), knots[k], device=DEV))
                buf_ids.append(ids)
                buf_x0.append(x0.half())
            keep = 4 * 8  # the last 8 rounds
            buf_x, buf_t, buf_ids, buf_x0 = buf_x[-keep:], buf_t[-keep:], buf_ids[-keep:], buf_x0[-keep:]
            X, T, I, X0 = (torch.cat(b) for b in (buf_x, buf_t, buf_ids, buf_x0))
            rounds += 1
            for _ in range(48):
                frac = (time.time() - t_start) / budget
                for pg, lr in zip(opt.param_groups, lrs):
                    pg["lr"] = lr * min(1.0, (i + 1) / 100) * (1.0 if frac < 0.7 else max(0.1, (1 - frac) / 0.3))
                idx = torch.randint(0, X.shape[0], (bs,), device=DEV, generator=gen)
                x, t = X[idx].float(), T[idx]
                with torch.no_grad():
                    ctx, mask = text(I[idx])
                with amp():
                    v = student(x, t, ctx, mask, attention=attention, top_k=self.turbo_topk())
                pred = x - t.view(-1, 1, 1, 1, 1) * v.float()
                loss = F.mse_loss(pred, X0[idx].float())
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
                opt.step()
                i += 1
                step += 1
                self.ema_update({"m": ema}, {"m": student}, i, ema_decay)
                losses.append(float(loss))
            log(phase=name[:-3], round=rounds, step=step, loss=round(float(np.mean(losses[-48:])), 5),
                elapsed=round(time.time() - t_start))
        log(phase=name[:-3], step=step, done=True, rounds=rounds, loss=round(float(np.mean(losses[-100:])), 5))
        self.save(name, {"dit": ema.state_dict(), "step": step})

    def turbo_topk(self):
        return self.cfg["profiles"]["turbo"]["slaTopK"]

    def phase_distill(self, minutes):
        student, _ = self.student("student.pt")
        if student is None:
            _, teacher, st = self.teacher()
            if st is None:
                raise SystemExit("distill: no teacher.pt")
            student = teacher
        self.distill_loop(minutes, student, [{"params": student.parameters(), "lr": 1e-4}],
                          "student.pt", "dense", 0.998)

    def phase_sla(self, minutes, fresh=False):
        student = None if fresh else self.student("student_sla.pt")[0]
        if student is None:
            student, _ = self.student("student.pt")
        if student is None:
            raise SystemExit("sla: no student.pt")
        proj = [p for n, p in student.named_parameters() if n.endswith("proj_l.weight")]
        rest = [p for n, p in student.named_parameters() if not n.endswith("proj_l.weight")]
        self.distill_loop(minutes, student, [{"params": proj, "lr": 1e-3}, {"params": rest, "lr": 1e-4}],
                          "student_sla.pt", "sla", 0.99)

    def generate(self, items, which, noise_seed=0):
        """Decoded uint8 clips for suite items. which: baseline | euler4 | student | turbo."""
        text, teacher, _ = self.teacher()
        vae, _ = self.vae()
        s = self.cfg["sampling"]
        out = []
        bs = 8 if self.smoke else 32
        for b in range(0, len(items), bs):
            chunk = items[b : b + bs]
            ids = self.tok.batch([it["prompt"] for it in chunk], DEV)
            gen = torch.Generator(device=DEV).manual_seed(noise_seed + b)
            noises = [torch.randn((len(chunk), *self.latent_shape), device=DEV, generator=gen) for _ in range(5)]
            with torch.no_grad(), amp():
                cond = Conditioner(text, ids, self.uncond)
                if which == "baseline":
                    z = euler(teacher, noises[0], cond, s["steps"], s["guidance_scale"], s["shift"])
                elif which == "euler4":
                    z = euler(teacher, noises[0], cond, 4, s["guidance_scale"], s["shift"])
                else:
                    name = "student.pt" if which == "student" else "student_sla.pt"
                    net, _ = self.student(name)
                    att = "sla" if which == "turbo" else "dense"
                    z = rcm(net, noises, cond, 4, s["sigma_max"], attention=att, top_k=self.turbo_topk())
                out.append(vae.decoder.decode(z.float()).cpu().numpy())
        return [c for batch in out for c in batch]

    def phase_check(self, _minutes=0):
        items = suite(8 if self.smoke else 72, seed=1)
        report, clips = {}, {}
        for which in ("baseline", "euler4", "student", "turbo"):
            if which in ("student", "turbo") and self.load("student.pt" if which == "student" else "student_sla.pt") is None:
                continue
            t0 = time.time()
            clips[which] = self.generate(items, which)
            report[which] = score(items, clips[which]) | {"seconds": round(time.time() - t0, 1)}
            log(phase="check", profile=which, **report[which])
        for which in ("student", "turbo", "euler4"):
            if which in clips:
                psnrs = []
                for a, b in zip(clips["baseline"], clips[which]):
                    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
                    psnrs.append(10 * math.log10(255**2 / max(mse, 1e-9)))
                report[which]["psnrVsBaseline"] = float(np.mean(psnrs))
        with open(self.path("reports/check.json"), "w") as f:
            json.dump(report, f, indent=1)
        write_contact(self.path("reports/contact.png"), list(range(8)) + list(range(24, 32)), clips)
        log(phase="check", done=True, psnr={k: round(v.get("psnrVsBaseline", 0), 2) for k, v in report.items()})

    def phase_teacache(self, _minutes=0):
        text, teacher, _ = self.teacher()
        s = self.cfg["sampling"]
        items = suite(16, seed=2)[-16:]
        ids = self.tok.batch([it["prompt"] for it in items], DEV)
        gen = torch.Generator(device=DEV).manual_seed(77)
        x = torch.randn((len(items), *self.latent_shape), device=DEV, generator=gen)
        from sample import euler_times, guided_v

        ts = euler_times(s["steps"], s["shift"])
        ins, outs = [], []
        with torch.no_grad(), amp():
            cond = Conditioner(text, ids, self.uncond)
            for i in range(len(ts) - 1):
                tt = torch.full((x.shape[0],), ts[i], device=DEV)
                vc, first = teacher(x, tt, cond.ctx, cond.mask, return_first_input=True)
                ins.append(first.float())
                outs.append(vc.float())
                v = guided_v(teacher, x, ts[i], cond, s["guidance_scale"]).float()
                x = x + (ts[i + 1] - ts[i]) * v
        xs, ys = [], []
        for i in range(1, len(ins)):
            dims_in = tuple(range(1, ins[i].dim()))
            dims_out = tuple(range(1, outs[i].dim()))
            xs += ((ins[i] - ins[i - 1]).abs().mean(dims_in) / ins[i - 1].abs().mean(dims_in)).tolist()
            ys += ((outs[i] - outs[i - 1]).abs().mean(dims_out) / outs[i - 1].abs().mean(dims_out)).tolist()
        coeffs = np.polyfit(np.asarray(xs), np.asarray(ys), 4).tolist()
        with open(self.path("teacache.json"), "w") as f:
            json.dump({"coefficients": coeffs, "points": len(xs)}, f)
        log(phase="teacache", coefficients=coeffs, points=len(xs),
            input_range=[float(min(xs)), float(max(xs))])

    def phase_export(self, _minutes=0):
        from export import export

        export(self, self.args.export_dir or self.path("export"))


def write_contact(path, rows_idx, clips):
    """Rows: suite items; columns: first, middle and last frame of each sampler."""
    from export import write_png

    rows = []
    for k in rows_idx:
        cols = []
        for which in clips:
            c = clips[which][k]
            for fi in (0, c.shape[0] // 2, c.shape[0] - 1):
                cols.append(np.pad(c[fi], ((2, 2), (2, 2), (0, 0))))
        rows.append(np.concatenate(cols, axis=1))
    write_png(path, np.concatenate(rows, axis=0))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("phase", choices=["import", "vae", "decoder", "teacher", "distill", "sla", "teacache", "check",
                                      "export", "all"])
    ap.add_argument("--from", dest="src", help="model directory the import phase reads (default models/tiny-shapes)",
                    default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models",
                                         "tiny-shapes"))
    ap.add_argument("--minutes", type=float, default=1.0)
    ap.add_argument("--plan", default="vae=2,teacher=4,distill=2,sla=1")
    ap.add_argument("--ckpt", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "checkpoints"))
    ap.add_argument("--export-dir")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--compile", action="store_true", help="compile the DiT blocks while training the teacher")
    ap.add_argument("--guidance", type=float, help="guidance scale of the baseline profile and of distillation")
    args = ap.parse_args()
    torch.manual_seed(0)
    if DEV.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    run = Run(args)
    if args.guidance is not None:
        run.cfg["sampling"]["guidance_scale"] = args.guidance
        run.cfg["profiles"]["baseline"]["guidanceScale"] = args.guidance
    if args.phase in ("vae", "decoder", "teacher", "all"):
        run.renderer()  # fork the render pool before CUDA starts
    log(device=torch.cuda.get_device_name() if DEV.type == "cuda" else "cpu", torch=torch.__version__)
    t0 = time.time()
    try:
        if args.phase == "all":
            plan = dict(kv.split("=") for kv in args.plan.split(",") if kv)
            for ph in ("vae", "decoder", "teacher", "distill"):
                if float(plan.get(ph, 0)) > 0:
                    getattr(run, f"phase_{ph}")(float(plan[ph]))
            if float(plan.get("sla", 0)) > 0:
                # a student distilled in this run is the one to sparsify
                run.phase_sla(float(plan["sla"]), fresh=float(plan.get("distill", 0)) > 0)
            for ph in ("teacache", "check", "export"):
                getattr(run, f"phase_{ph}")()
        else:
            getattr(run, f"phase_{args.phase}")(args.minutes)
    finally:
        if run._renderer is not None:
            run._renderer.close()
    log(done=args.phase, seconds=round(time.time() - t0, 1))


if __name__ == "__main__":
    main()
