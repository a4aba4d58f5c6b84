"""A 2-D map of the tool repository: embedded tools projected with t-SNE, coloured by category.

`tool_map(repo, out_png)` samples up to `n_per_source` tools from each of two groups — real
(crawl and live: tools of real MCP servers) and synthetic (generated, and the hand-written starter
world) — embeds each tool's name and description (`agentgym.repository.embed`), projects the
embeddings to 2-D with t-SNE (PCA to 50 dimensions first, cosine distances, seeded) and draws them as
the Kimi K2 report draws its tool repository: one colour per category (the largest categories get the most distinct colours;
past `MAX_COLOURS` the rest share a grey "other"), real tools as circles with a dark edge over
synthetic tools as small dots, the legend outside the plot, and counts in the subtitle. It writes
the PNG (1600 × 1100 px) and, beside it, a CSV of the points (name, source, group, category, x, y),
and returns a `ToolMap` with the paths and counts.

The sample is seeded and stratified: within each group, tools are drawn per category in proportion
to the category's size (largest remainder), so a small category still appears and the picture
keeps the group's real shape. With the default 1,000 per group the map takes about a minute on
two CPU cores, most of it embedding (embeddings are cached; a second run is quick).
"""

from __future__ import annotations

import csv
import math
import random
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agentgym.repository.embed import TextEmbedder, tool_text
from agentgym.repository.stats import group_of, tool_source
from agentgym.repository.store import ToolRepository

MAX_COLOURS = 30
SIZE_PX = (1600, 1100)
DPI = 100


@dataclass(frozen=True)
class ToolMap:
    """What `tool_map` made."""

    png: Path
    csv: Path
    real: int
    """Real tools drawn."""
    synthetic: int
    """Synthetic tools drawn."""
    real_total: int
    synthetic_total: int
    categories: int
    embed_s: float
    project_s: float


def stratified_sample(items: list[Any], key: Callable[[Any], str], n: int, seed: int) -> list[Any]:
    """Up to n items, per key in proportion to its size (largest remainder, at least one per key
    while n allows), seeded; the result keeps the items' order."""
    if len(items) <= n:
        return list(items)
    by_key: dict[str, list[int]] = defaultdict(list)
    for i, it in enumerate(items):
        by_key[key(it)].append(i)
    keys = sorted(by_key, key=lambda k: (-len(by_key[k]), k))
    quota = {k: len(by_key[k]) * n / len(items) for k in keys}
    take = {k: math.floor(quota[k]) for k in keys}
    for k in reversed(keys):  # every key once where n allows, smallest first
        if sum(take.values()) >= n:
            break
        if take[k] == 0:
            take[k] = 1
    rest = sorted(keys, key=lambda k: (-(quota[k] - math.floor(quota[k])), k))
    for k in rest:
        if sum(take.values()) >= n:
            break
        if take[k] < len(by_key[k]):
            take[k] += 1
    rng = random.Random(seed)
    chosen = [i for k in keys for i in rng.sample(by_key[k], min(take[k], len(by_key[k])))]
    return [items[i] for i in sorted(chosen)]


# tab10, then tab20b's darkest shades, tab20's light shades and tab20b's middle ones: 30 colours, the
# most distinct first (categories are coloured largest first)
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
    "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#aec7e8", "#ffbb78", "#98df8a",
    "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5", "#6b6ecf", "#b5cf6b", "#e7ba52",
    "#d6616b", "#ce6dbd", "#5254a3",
)  # fmt: skip


def palette(n: int) -> list[str]:
    """The first n of `PALETTE` (n ≤ `MAX_COLOURS`)."""
    return list(PALETTE[:n])


def project(embeddings: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D t-SNE coordinates of the rows (cosine metric, PCA to 50 dimensions first)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    n = len(embeddings)
    if n < 3:
        return np.zeros((n, 2))
    x = embeddings
    if x.shape[1] > 50 and n > 50:
        x = PCA(50, random_state=seed).fit_transform(x)
    perplexity = min(30.0, (n - 1) / 3)
    tsne = TSNE(2, perplexity=perplexity, metric="cosine", init="pca", random_state=seed)
    return tsne.fit_transform(x)


def tool_map(
    repo: ToolRepository,
    out_png: Path,
    n_per_source: int = 1000,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
    embedder: TextEmbedder | None = None,
) -> ToolMap:
    """Draw the map (module doc). `progress(stage, done, total)` is called while embedding
    (stage 'embed') and once before and after projecting (stage 'project')."""
    rows = [(tool_source(repo, d, t), t) for d, t in repo.raw_tools()]
    groups: dict[str, list[tuple[str, Mapping[str, Any]]]] = {"real": [], "synthetic": []}
    for source, tool in rows:
        groups[group_of(source)].append((source, tool))

    def category(row: tuple[str, Mapping[str, Any]]) -> str:
        return (row[1].get("taxonomy") or {}).get("category") or "(none)"

    sample = {g: stratified_sample(v, category, n_per_source, seed) for g, v in groups.items()}
    picked = sample["synthetic"] + sample["real"]  # real drawn last, on top
    if not picked:
        raise ValueError("the repository has no tools to map")
    embedder = embedder or TextEmbedder()
    texts = [tool_text(t) for _, t in picked]
    done = 0

    def advance(k: int) -> None:
        nonlocal done
        done += k
        if progress is not None:
            progress("embed", done, len(texts))

    t0 = time.perf_counter()
    emb = embedder.embed(texts, progress=advance)
    t1 = time.perf_counter()
    if progress is not None:
        progress("project", 0, 1)
    xy = project(emb, seed)
    t2 = time.perf_counter()
    if progress is not None:
        progress("project", 1, 1)

    cats = [category(r) for r in picked]
    counts: dict[str, int] = defaultdict(int)
    for c in cats:
        counts[c] += 1
    ranked = sorted(counts, key=lambda c: (-counts[c], c))
    shown = ranked if len(ranked) <= MAX_COLOURS else ranked[: MAX_COLOURS - 1]
    label = {c: (c if c in shown else "other") for c in ranked}
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    out_csv = out_png.with_suffix(".csv")
    with open(out_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["name", "source", "group", "category", "x", "y"])
        for (source, tool), c, (x, y) in zip(picked, cats, xy, strict=True):
            w.writerow([tool.get("name"), source, group_of(source), c, f"{x:.4f}", f"{y:.4f}"])
    result = ToolMap(
        png=out_png,
        csv=out_csv,
        real=len(sample["real"]),
        synthetic=len(sample["synthetic"]),
        real_total=len(groups["real"]),
        synthetic_total=len(groups["synthetic"]),
        categories=len(ranked),
        embed_s=round(t1 - t0, 2),
        project_s=round(t2 - t1, 2),
    )
    _draw(
        result,
        picked,
        [label[c] for c in cats],
        [*shown, *(["other"] if len(shown) < len(ranked) else [])],
        xy,
    )
    return result


def _draw(
    m: ToolMap,
    picked: list[tuple[str, Mapping[str, Any]]],
    labels: list[str],
    legend: list[str],
    xy: np.ndarray,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgb
    from matplotlib.lines import Line2D

    colours = dict(zip(legend, palette(len(legend)), strict=False))
    colours["other"] = "#b0b0b0"
    fig = plt.figure(figsize=(SIZE_PX[0] / DPI, SIZE_PX[1] / DPI), dpi=DPI)
    ax = fig.add_axes((0.03, 0.05, 0.68, 0.83))
    real = np.array([group_of(s) == "real" for s, _ in picked])
    col = np.array([to_rgb(colours[lab]) for lab in labels]).reshape(-1, 3)
    if (~real).any():
        ax.scatter(xy[~real, 0], xy[~real, 1], s=5, c=col[~real], alpha=0.55, linewidths=0, zorder=1)
    if real.any():
        ax.scatter(
            xy[real, 0],
            xy[real, 1],
            s=26,
            c=col[real],
            edgecolors="#222222",
            linewidths=0.5,
            alpha=0.9,
            zorder=2,
        )
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_color("#bbbbbb")
    fig.text(0.03, 0.955, "Tool repository: t-SNE of tool embeddings", fontsize=20, weight="bold")
    fig.text(
        0.03,
        0.915,
        f"{m.real:,} of {m.real_total:,} real tools (crawl, live) and {m.synthetic:,} of "
        f"{m.synthetic_total:,} synthetic tools · {m.categories} categories · all-MiniLM-L6-v2 embeddings "
        "of name and description",
        fontsize=11.5,
        color="#444444",
    )
    cat_handles = [
        Line2D(
            [],
            [],
            marker="o",
            linestyle="",
            markersize=8,
            markerfacecolor=colours[c],
            markeredgewidth=0,
            label=c,
        )
        for c in legend
    ]
    group_handles = [
        Line2D([], [], marker="o", linestyle="", markersize=8, markerfacecolor="#cccccc",
               markeredgecolor="#222222", markeredgewidth=0.8, label="real tool"),
        Line2D([], [], marker="o", linestyle="", markersize=3.5, markerfacecolor="#888888",
               markeredgewidth=0, label="synthetic tool"),
    ]  # fmt: skip
    fig.legend(
        handles=group_handles, loc="upper left", bbox_to_anchor=(0.725, 0.88), frameon=False, fontsize=10.5
    )
    fig.legend(
        handles=cat_handles,
        loc="upper left",
        bbox_to_anchor=(0.725, 0.81),
        ncol=1 if len(cat_handles) <= 16 else 2,
        frameon=False,
        fontsize=9.5 if len(cat_handles) <= 16 else 8.5,
        title="category",
        title_fontsize=10.5,
        alignment="left",
        handletextpad=0.3,
        columnspacing=0.8,
    )
    fig.savefig(m.png, dpi=DPI)
    plt.close(fig)
