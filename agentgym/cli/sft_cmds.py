"""CLI: `agentgym sft export` — rejection-sampled, de-duplicated trajectories as training data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from agentgym.cli.runs import console

sft_app = typer.Typer(help="SFT data: export trajectories that meet their rubric.", no_args_is_help=True)


@sft_app.command("export")
def export(
    inputs: Annotated[
        list[Path], typer.Argument(help="Trajectory JSONL files (from agentgym run / rollout).")
    ],
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("runs/sft"),
    formats: Annotated[
        str, typer.Option(help="Comma-separated: openai, parquet, sharegpt.")
    ] = "openai,parquet,sharegpt",
    dpo: Annotated[
        bool, typer.Option(help="Also write DPO pairs (a passing and a failing rollout per task).")
    ] = True,
    min_score: Annotated[float, typer.Option(help="Keep trajectories scoring at least this.")] = 1.0,
    min_judge: Annotated[float, typer.Option(help="Every graded judge criterion must reach this.")] = 0.5,
    allow_truncated: Annotated[bool, typer.Option(help="Keep episodes cut by a budget.")] = False,
    allow_malformed: Annotated[bool, typer.Option(help="Keep episodes with malformed calls.")] = False,
) -> None:
    """Filter trajectories by their rubric (rejection sampling), de-duplicate, and write SFT formats."""
    from agentgym.sft.export import FORMATS, ExportConfig, select, write_dpo
    from agentgym.spec.jsonl import JsonlError, read_jsonl
    from agentgym.spec.trajectory import Trajectory

    chosen = [f.strip() for f in formats.split(",") if f.strip()]
    unknown = set(chosen) - set(FORMATS)
    if unknown:
        console.print(f"[red]error:[/] unknown formats {sorted(unknown)}; known: {', '.join(FORMATS)}")
        raise typer.Exit(2)
    trajs = []
    for path in inputs:
        if not path.exists():
            console.print(f"[red]error:[/] no file {path}")
            raise typer.Exit(2)
        try:
            trajs += list(read_jsonl(path, Trajectory))
        except JsonlError as e:
            console.print(f"[red]error:[/] {e}")
            raise typer.Exit(2) from None
    cfg = ExportConfig(
        min_score=min_score,
        min_judge=min_judge,
        allow_truncated=allow_truncated,
        allow_malformed=allow_malformed,
    )
    kept, dropped = select(trajs, cfg)
    out.mkdir(parents=True, exist_ok=True)
    written = {f: str(FORMATS[f](kept, out)) for f in chosen}
    if dpo:
        written["dpo"] = str(write_dpo(trajs, out))
    summary = {"read": len(trajs), "kept": len(kept), "dropped": dropped, "files": written}
    (out / "export.json").write_text(json.dumps(summary, indent=2) + "\n")
    console.print(f"[green]kept {len(kept)} of {len(trajs)}[/] trajectories; dropped {dropped or 'none'}")
    for name, path in written.items():
        console.print(f"  {name}: {path}")
