"""Markdown table of a bench_attention.py JSON file (for docs/BENCHMARKS.md).

usage: python3 bench/gpu/table.py attention.json
"""

import json
import sys

data = json.load(open(sys.argv[1]))
print(f"Card: {data['device']}, PyTorch {data['torch']}.\n")
print("| shape [B, H, N, hd] | kernel | median ms | TFLOP/s (dense eq.) | vs SDPA | cos vs fp32 ref | relL2 | cos vs dense fp32 |")
print("|---|---|---|---|---|---|---|---|")
for r in data["rows"]:
    if r["kernel"] == "sla_stages_ms":
        continue
    cd = r.get("cos_vs_dense")
    print(
        f"| {r['shape']} | {r['kernel']} | {r['median_ms']:.3f} | {r['tflops_dense_equivalent']:.1f} | "
        f"{r['speedup_vs_sdpa']:.2f}x | {r['cos']:.5f} | {r['rel_l2']:.2e} | {'' if cd is None else f'{cd:.4f}'} |"
    )
