"""CLI: `agentgym train sft` (priming on oracle or exported trajectories) and `agentgym train grpo`.

Both take a YAML config (`--config`) whose keys are the fields of `SFTConfig` / `GRPOConfig`;
command-line options override it. Progress goes to the terminal, metrics to JSONL in `--out`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from agentgym.cli.runs import console

train_app = typer.Typer(help="Train a policy: SFT priming, then multi-turn GRPO.", no_args_is_help=True)


def _fail(e: Exception) -> None:
    console.print(f"[red]error:[/red] {e}")
    raise typer.Exit(2)


@train_app.command("sft")
def sft(
    config: Annotated[Path | None, typer.Option(help="YAML with SFTConfig fields.")] = None,
    model: Annotated[str | None, typer.Option(help="'embedded' or a local checkpoint folder.")] = None,
    source: Annotated[
        str | None, typer.Option(help="'oracle' or a chat JSONL (agentgym sft export).")
    ] = None,
    suite: Annotated[str | None, typer.Option(help="Suite for --source oracle.")] = None,
    split: Annotated[str | None, typer.Option(help="Split for --source oracle.")] = None,
    max_examples: Annotated[int | None, typer.Option(help="Use at most this many conversations.")] = None,
    epochs: Annotated[int | None, typer.Option()] = None,
    lr: Annotated[float | None, typer.Option()] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    out: Annotated[str | None, typer.Option(help="Output folder (the model goes to <out>/model).")] = None,
) -> None:
    """Supervised priming: imitate passing trajectories; writes a checkpoint for `train grpo --model`."""
    from agentgym.train.sft import SFTConfig, train_sft
    from agentgym.yamlfile import load_yaml

    data = (load_yaml(config.read_text()) or {}) if config else {}
    over = dict(
        model=model,
        source=source,
        suite=suite,
        split=split,
        max_examples=max_examples,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        out=out,
    )
    data.update({k: v for k, v in over.items() if v is not None})
    try:
        cfg = SFTConfig.model_validate(data)
        summary = train_sft(
            cfg, on_step=lambda m: console.print(f"step {m['step']} epoch {m['epoch']} loss {m['loss']:.4f}")
        )
    except (ValidationError, ValueError, FileNotFoundError) as e:
        _fail(e)
    console.print_json(json.dumps(summary))


def _assignments(items: list[str]) -> dict:
    """`FIELD=VALUE` strings as a dict, each value parsed as YAML (`3` is an int, `{r: 8}` a mapping)."""
    from agentgym.yamlfile import load_yaml

    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise typer.BadParameter(f"expected FIELD=VALUE, got {item!r}", param_hint="--set")
        out[key.strip()] = load_yaml(value) if value.strip() else None
    return out


@train_app.command("grpo")
def grpo(
    config: Annotated[Path | None, typer.Option(help="YAML with GRPOConfig fields.")] = None,
    model: Annotated[str | None, typer.Option(help="'embedded' or a local checkpoint folder.")] = None,
    suite: Annotated[str | None, typer.Option()] = None,
    split: Annotated[str | None, typer.Option()] = None,
    steps: Annotated[int | None, typer.Option()] = None,
    group_size: Annotated[int | None, typer.Option("--group-size", "-G")] = None,
    tasks_per_step: Annotated[int | None, typer.Option()] = None,
    max_new_tokens: Annotated[int | None, typer.Option()] = None,
    lr: Annotated[float | None, typer.Option()] = None,
    advantage: Annotated[str | None, typer.Option(help="grpo, drgrpo, rloo.")] = None,
    aggregation: Annotated[
        str | None, typer.Option(help="token_mean, seq_mean_token_sum_norm, seq_mean_token_mean.")
    ] = None,
    out: Annotated[
        str | None, typer.Option(help="Run folder (metrics, checkpoint, curve.png); resumes if present.")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="FIELD=VALUE for any GRPOConfig field, the value read as YAML (e.g. --set generator=local_int8 "
            "--set eps_high=0.28 --set 'lora={r: 8}'); repeatable, wins over --config.",
        ),
    ] = None,
) -> None:
    """Multi-turn GRPO through the environment (resumes from <out>/checkpoint)."""
    from agentgym.train.grpo import GRPOTrainer, load_config

    try:
        flags = dict(
            model=model,
            suite=suite,
            split=split,
            steps=steps,
            group_size=group_size,
            tasks_per_step=tasks_per_step,
            max_new_tokens=max_new_tokens,
            lr=lr,
            advantage=advantage,
            aggregation=aggregation,
            out=out,
        )
        cfg = load_config(config, **(flags | _assignments(set_ or [])))
        trainer = GRPOTrainer(cfg)
    except (ValidationError, ValueError, FileNotFoundError) as e:
        _fail(e)
    if trainer.step:
        console.print(f"resuming at step {trainer.step}")

    def show(m: dict) -> None:
        console.print(
            f"step {int(m['step'])}: reward {m['reward']:.3f} pass {m['pass_rate']:.2f} "
            f"informative {int(m['groups_informative'])}/{int(m['groups'])} {m['step_s']:.1f}s"
        )

    trainer.train(on_step=show)
    console.print(f"metrics: {Path(cfg.out) / 'metrics.jsonl'}  curve: {Path(cfg.out) / 'curve.png'}")
