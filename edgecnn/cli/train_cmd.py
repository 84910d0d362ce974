"""``edgecnn train MODEL --data fashion-mnist --out DIR``: train a zoo model, write checkpoints."""

from __future__ import annotations

import click

from edgecnn.cli.main import THREADS, handle_errors
from edgecnn.cli.native_logs import quiet_libraries


@click.command("train")
@click.argument("model")
@click.option("--data", default="fashion-mnist", show_default=True,
              help="Training data: fashion-mnist (55k train split), an image folder or a .npz.")
@click.option("--out", type=click.Path(), default=None, help="Checkpoint folder [runs/MODEL].")
@click.option("--epochs", type=int, default=10, show_default=True)
@click.option("--batch-size", type=int, default=128, show_default=True)
@click.option("--lr", type=float, default=None, help="Peak learning rate [0.1 sgd, 0.003 adamw].")
@click.option("--optimizer", type=click.Choice(["sgd", "adamw"]), default="sgd", show_default=True)
@click.option("--weight-decay", type=float, default=5e-4, show_default=True)
@click.option("--label-smoothing", type=float, default=0.0, show_default=True)
@click.option("--augment", type=click.Choice(["none", "flip", "crop", "crop+flip"]),
              default="crop+flip", show_default=True)
@click.option("--img-size", type=int, default=None,
              help="Model input side (default: the model's own small size, e.g. 32 for lenet5).")
@click.option("--val", default=None, help="Validation data [fashion-mnist:val or 10% held out].")
@click.option("--test", default=None, help="Test data for best.pt at the end [fashion-mnist:test].")
@click.option("--train-samples", type=int, default=None, help="Train on a seeded subset.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=THREADS, default=2, show_default=True, help="torch CPU threads.")
@click.option("--resume", is_flag=True, help="Continue from OUT/last.pt.")
@click.option("--no-progress", is_flag=True, help="Plain log lines only (for log files).")
@handle_errors
@quiet_libraries
def train(model, no_progress, **options):
    """Train MODEL (a zoo name) and write OUT/best.pt, OUT/last.pt and OUT/history.json."""
    from edgecnn.train import TrainConfig
    from edgecnn.train import train as run_training

    config = TrainConfig(model=model, **options)
    result = run_training(config, progress=not no_progress,
                          log=lambda m: click.echo(m))
    click.echo(f"best: {result.best_path} (epoch {result.best_epoch}, val top-1 "
               f"{result.best_val_top1:.2f}%"
               + (f", test top-1 {result.test_top1:.2f}%)" if result.test_top1 is not None else ")"))
