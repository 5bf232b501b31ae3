"""Helpers shared by the GPU benchmarks: CUDA-event timing."""

import statistics

import torch


def time_ms(fn, warmup, reps):
    """Median, min and max milliseconds of fn over reps runs after warmup runs (CUDA events)."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times), min(times), max(times)
