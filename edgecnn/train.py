"""Train a zoo model on an image dataset and write edgecnn checkpoints (needs torch).

``train(TrainConfig(...))`` writes into ``out``:
  ``last.pt``  after every epoch, with the optimizer/scheduler state for ``resume``;
  ``best.pt``  the epoch with the best validation top-1 (no optimizer state: the file to ship);
  ``history.json``  per-epoch loss/accuracy/time.
Checkpoints follow the ``edgecnn-checkpoint-v1`` format (see :func:`edgecnn.models.checkpoint.make_checkpoint`), loadable
with ``torch.load(weights_only=True)``.

The preprocessing comes from one :class:`~edgecnn.manifest.Preprocess` that is stored in the
checkpoint: images are converted and resized once by :mod:`edgecnn.data.preprocess`'s rules
and kept as uint8; each batch is augmented on uint8 tensors and normalised in torch with
exactly ``(x * scale - mean) / std`` as ``normalize_uint8`` does for evaluation and the runtime.
Data order and augmentation come from a generator seeded by (seed, epoch), so a run resumed
from ``last.pt`` continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgecnn.errors import DataError, EdgeCNNError, ModelLoadError
from edgecnn.manifest import Preprocess
from edgecnn.models.checkpoint import (make_checkpoint, read_checkpoint, save_checkpoint,
                                       torch_predict_fn)

AUGMENTS = ("none", "flip", "crop", "crop+flip")
OPTIMIZERS = ("sgd", "adamw")


@dataclass
class TrainConfig:
    """Everything ``edgecnn train`` accepts; CLI options use the same names."""

    model: str
    data: str = "fashion-mnist"  # training data spec; 'fashion-mnist' trains on the 55k split
    out: Path | None = None  # default runs/<model>
    epochs: int = 10
    batch_size: int = 128
    lr: float | None = None  # peak learning rate; default 0.1 (sgd) / 0.003 (adamw)
    optimizer: str = "sgd"  # sgd (momentum 0.9, nesterov) | adamw
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    augment: str = "crop+flip"  # none | flip | crop | crop+flip
    img_size: int | None = None  # default: see default_img_size
    val: str | None = None  # validation spec; default fashion-mnist:val or 10% held out
    test: str | None = None  # evaluated once with best.pt at the end; default fashion-mnist:test
    train_samples: int | None = None  # use a seeded subset of the training data (quick runs)
    seed: int = 0
    threads: int = 2
    resume: bool = False

    def __post_init__(self) -> None:
        self.out = Path(self.out) if self.out is not None else Path("runs") / self.model
        from edgecnn.bundle import check_output_folder

        check_output_folder(self.out, "--out", "checkpoint folder")
        if self.augment not in AUGMENTS:
            raise EdgeCNNError(f"augment must be one of {', '.join(AUGMENTS)}, got {self.augment!r}")
        if self.optimizer not in OPTIMIZERS:
            raise EdgeCNNError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, "
                               f"got {self.optimizer!r}")
        for name in ("epochs", "batch_size", "threads"):
            if getattr(self, name) < 1:
                raise EdgeCNNError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr is None:
            self.lr = 0.1 if self.optimizer == "sgd" else 3e-3
        if not 0 < self.lr < float("inf"):  # NaN fails too
            raise EdgeCNNError(f"lr must be a number > 0, got {self.lr}")
        if not 0 <= self.weight_decay < float("inf"):
            raise EdgeCNNError(f"weight_decay must be a number >= 0, got {self.weight_decay}")
        if self.seed < 0:  # numpy refuses negative seeds deep inside the data loader
            raise EdgeCNNError(f"seed must be >= 0, got {self.seed}")
        if not 0 <= self.label_smoothing <= 1:
            raise EdgeCNNError(f"label_smoothing must be between 0 and 1, got "
                               f"{self.label_smoothing}")


@dataclass
class EpochStats:
    epoch: int  # 1-based
    train_loss: float
    train_top1: float  # percent, on the augmented training batches
    val_top1: float
    val_top5: float
    seconds: float
    lr: float


@dataclass
class TrainResult:
    out: Path
    best_path: Path
    last_path: Path
    best_epoch: int
    best_val_top1: float
    test_top1: float | None
    test_top5: float | None
    history: list[EpochStats] = field(default_factory=list)


# -- data --------------------------------------------------------------------------------
def default_img_size(model: str, data_side: int | None) -> int:
    """Small-input zoo models keep their reference size (lenet5: 32, resnet8: 28; smaller data
    is resized up by the preprocess); big ones use their smallest tested size, at least the data's."""
    from edgecnn.models import get_model_info

    info = get_model_info(model)
    ref = info.input_size[1]
    if ref <= 64:
        return ref
    return max(info.test_size[1], data_side or 0, 32)


def resolve_data(config: TrainConfig):
    """-> (train, val, test | None) ImageDatasets for the config."""
    from edgecnn.data.datasets import load_dataset

    spec = config.data
    is_fmnist = spec.split(":")[0].lower() in ("fashion-mnist", "fashion_mnist", "fmnist")
    if is_fmnist and ":" not in spec:
        spec = "fashion-mnist:train"
    train = load_dataset(spec)
    if train.labels is None:
        raise DataError(f"{spec} has no labels; training needs labelled data")
    if config.val:
        val = load_dataset(config.val)
    elif is_fmnist:
        val = load_dataset("fashion-mnist:val")
    else:  # hold out 10% of the given data with a fixed seed
        n = len(train)
        if n < 10:
            raise DataError(f"{spec} has only {n} images; pass --val for validation data")
        perm = np.random.default_rng(0).permutation(n)
        cut = max(1, n // 10)
        val, train = train._take(np.sort(perm[:cut]), "[val]"), train._take(np.sort(perm[cut:]), "[train]")
    if val.classes != train.classes:
        raise DataError(f"validation classes {val.classes[:5]}... differ from training classes "
                        f"{train.classes[:5]}...")
    test_spec = config.test or ("fashion-mnist:test" if is_fmnist else None)
    test = load_dataset(test_spec) if test_spec else None
    if config.train_samples:
        train = train.subset(config.train_samples, seed=config.seed)
    return train, val, test


def make_preprocess(config: TrainConfig, train) -> Preprocess:
    from edgecnn.data.fashion_mnist import fashion_mnist_preprocess

    side = None if train.images is None else train.images.shape[1]
    size = config.img_size or default_img_size(config.model, side)
    if train.spec.startswith("fashion-mnist"):
        return fashion_mnist_preprocess(size)
    # other data: statistics of (up to) 2000 training images at the model size
    channels = int(train.meta.get("channels", 3))
    probe = Preprocess(size=[size, size], channels=channels, mean=[0.0] * channels,
                       std=[1.0] * channels, channel_order="L" if channels == 1 else "RGB")
    sample = train.subset(min(2000, len(train)), seed=0).uint8_images(probe).astype(np.float32) / 255
    axes = tuple(range(sample.ndim - (0 if channels == 1 else 1)))
    mean = np.atleast_1d(sample.mean(axis=axes)).tolist()
    std = np.maximum(np.atleast_1d(sample.std(axis=axes)), 1e-3).tolist()
    return dataclasses.replace(probe, mean=[float(m) for m in mean], std=[float(s) for s in std])


def _uint8_tensor(dataset, spec: Preprocess):
    """All images as a uint8 torch tensor (N, C, H, W) at the preprocess size."""
    import torch

    arr = dataset.uint8_images(spec)
    t = torch.from_numpy(arr)
    return t.unsqueeze(1) if arr.ndim == 3 else t.permute(0, 3, 1, 2).contiguous()


def augment_uint8(x, mode: str, generator):
    """Random crop with zero padding and/or horizontal flip, per sample, on uint8 tensors."""
    import torch
    import torch.nn.functional as F

    n, c, h, w = x.shape
    if "crop" in mode:
        pad = max(1, min(h, w) // 8)
        padded = F.pad(x, (pad, pad, pad, pad))
        oy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        ox = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        rows = (oy[:, None] + torch.arange(h))[:, None, :, None]
        cols = (ox[:, None] + torch.arange(w))[:, None, None, :]
        x = padded[torch.arange(n)[:, None, None, None], torch.arange(c)[None, :, None, None],
                   rows, cols]
    if "flip" in mode:
        flip = torch.rand(n, generator=generator) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    return x


class _Normalize:
    """uint8 NCHW -> float32 with the preprocess formula (x * scale - mean) / std."""

    def __init__(self, spec: Preprocess):
        import torch

        if spec.channel_order == "BGR":
            raise DataError("training with channel_order BGR is not supported")
        self.scale = float(spec.scale)
        self.mean = torch.tensor(spec.mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(spec.std, dtype=torch.float32).view(1, -1, 1, 1)

    def __call__(self, x):
        return (x.float() * self.scale - self.mean) / self.std


# -- training ----------------------------------------------------------------------------
def _optimizer(config: TrainConfig, module, steps_total: int):
    import torch

    decay, no_decay = [], []
    for name, p in module.named_parameters():  # no weight decay on biases and norm scales
        (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if config.optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=config.lr, momentum=0.9, nesterov=True)
    else:
        opt = torch.optim.AdamW(groups, lr=config.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=steps_total,
                                                pct_start=0.25, div_factor=10.0,
                                                final_div_factor=100.0)
    return opt, sched


def train(config: TrainConfig, progress: bool = True, log: Callable[[str], None] = print
          ) -> TrainResult:
    import torch

    from edgecnn.data.accuracy import evaluate
    from edgecnn.models import create_model

    torch.set_num_threads(config.threads)
    out = config.out
    last_path, best_path = out / "last.pt", out / "best.pt"

    train_ds, val_ds, test_ds = resolve_data(config)
    preprocess = make_preprocess(config, train_ds)
    labels = list(train_ds.classes)
    size = preprocess.size[0]
    torch.manual_seed(config.seed)
    module = create_model(config.model, num_classes=len(labels), in_chans=preprocess.channels,
                          img_size=size)
    module = module.to(memory_format=torch.channels_last)

    x_train = _uint8_tensor(train_ds, preprocess)
    y_train = torch.from_numpy(train_ds.labels)
    normalize = _Normalize(preprocess)
    n = len(y_train)
    steps_per_epoch = math.ceil(n / config.batch_size)
    opt, sched = _optimizer(config, module, steps_per_epoch * config.epochs)

    history: list[EpochStats] = []
    start_epoch, best_val, best_epoch = 0, -1.0, 0
    if config.resume:
        start_epoch, best_val, best_epoch, history = _resume(config, last_path, module, opt, sched,
                                                             preprocess, labels)
        log(f"resuming {config.model} from {last_path} after epoch {start_epoch}")
    else:
        out.mkdir(parents=True, exist_ok=True)
    log(f"training {config.model} ({sum(p.numel() for p in module.parameters()):,} params) on "
        f"{train_ds.spec} ({n} images, {preprocess.channels}x{size}x{size}), validating on "
        f"{val_ds.spec} ({len(val_ds)}); {config.epochs} epochs, batch {config.batch_size}, "
        f"{config.optimizer} lr {config.lr}, augment {config.augment}, seed {config.seed}, "
        f"{config.threads} thread(s)")

    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    with _EpochBar(progress, steps_per_epoch) as bar:
        for epoch in range(start_epoch, config.epochs):
            t0 = time.perf_counter()
            gen = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
            torch.manual_seed(config.seed * 1_000_003 + epoch)  # dropout etc.
            order = torch.randperm(n, generator=gen)
            module.train()
            bar.start(epoch + 1, config.epochs)
            loss_sum, correct, seen = 0.0, 0, 0
            for step in range(steps_per_epoch):
                idx = order[step * config.batch_size:(step + 1) * config.batch_size]
                xb = x_train[idx]
                if config.augment != "none":
                    xb = augment_uint8(xb, config.augment, gen)
                xb = normalize(xb).contiguous(memory_format=torch.channels_last)
                yb = y_train[idx]
                logits = module(xb)
                loss = loss_fn(logits, yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                if not math.isfinite(loss.item()):
                    raise EdgeCNNError(f"training diverged at epoch {epoch + 1} step {step} "
                                       f"(loss {loss.item()}); lower --lr")
                loss_sum += loss.item() * len(yb)
                correct += int((logits.argmax(1) == yb).sum())
                seen += len(yb)
                bar.update(loss_sum / seen, 100.0 * correct / seen)
            val = evaluate(torch_predict_fn(module), val_ds, preprocess, batch_size=500,
                           progress=False)
            stats = EpochStats(epoch=epoch + 1, train_loss=loss_sum / seen,
                               train_top1=100.0 * correct / seen, val_top1=val.top1,
                               val_top5=val.top5, seconds=time.perf_counter() - t0,
                               lr=float(sched.get_last_lr()[0]))
            history.append(stats)
            improved = stats.val_top1 > best_val
            if improved:
                best_val, best_epoch = stats.val_top1, stats.epoch
            metrics = _metrics(history, best_val, best_epoch, train_ds, val_ds, config)
            if improved:
                save_checkpoint(make_checkpoint(config.model, module, preprocess, labels,
                                                stats.epoch, metrics), best_path)
            save_checkpoint(make_checkpoint(config.model, module, preprocess, labels, stats.epoch,
                                            metrics, _train_state(config, opt, sched)), last_path)
            _write_history(out, history)
            bar.finish_epoch()
            log(f"epoch {stats.epoch}/{config.epochs}: loss {stats.train_loss:.4f}  train "
                f"{stats.train_top1:.2f}%  val {stats.val_top1:.2f}% (top-5 {stats.val_top5:.2f}%)  "
                f"{stats.seconds:.0f}s{'  * best' if improved else ''}")

    test_top1 = test_top5 = None
    if test_ds is not None and best_path.is_file():
        from edgecnn.models.loading import load_model

        ckpt = read_checkpoint(best_path)
        res = evaluate(torch_predict_fn(load_model(best_path).module), test_ds, preprocess, batch_size=500,
                       progress=progress, description=f"testing best.pt on {test_ds.spec}")
        test_top1, test_top5 = res.top1, res.top5
        ckpt["metrics"].update({"test_spec": test_ds.spec, "test_top1": round(res.top1, 4),
                                "test_top5": round(res.top5, 4), "test_n": res.n})
        save_checkpoint(ckpt, best_path)
        log(f"best.pt (epoch {best_epoch}, val {best_val:.2f}%): test top-1 {res.top1:.2f}%, "
            f"top-5 {res.top5:.2f}% on {res.n} images")
    return TrainResult(out=out, best_path=best_path, last_path=last_path, best_epoch=best_epoch,
                       best_val_top1=best_val, test_top1=test_top1, test_top5=test_top5,
                       history=history)


def _metrics(history, best_val, best_epoch, train_ds, val_ds, config) -> dict[str, Any]:
    last = history[-1]
    return {"val_top1": round(last.val_top1, 4), "val_top5": round(last.val_top5, 4),
            "train_loss": round(last.train_loss, 6), "train_top1": round(last.train_top1, 4),
            "best_val_top1": round(best_val, 4), "best_epoch": best_epoch,
            "train_spec": train_ds.spec, "val_spec": val_ds.spec,
            "epoch_seconds": [round(h.seconds, 2) for h in history],
            "train_config": _jsonable_config(config)}


def _jsonable_config(config: TrainConfig) -> dict[str, Any]:
    d = dataclasses.asdict(config)
    d["out"] = str(config.out)
    return {k: v for k, v in d.items() if v is not None}


def _train_state(config: TrainConfig, opt, sched) -> dict:
    return {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "config": _jsonable_config(config)}


def _write_history(out: Path, history: list[EpochStats]) -> None:
    tmp = out / ".history.json.tmp"
    tmp.write_text(json.dumps([dataclasses.asdict(h) for h in history], indent=1) + "\n")
    os.replace(tmp, out / "history.json")


_RESUME_MUST_MATCH = ("model", "data", "batch_size", "epochs", "lr", "optimizer", "weight_decay",
                      "augment", "seed", "train_samples", "label_smoothing")


def _resume(config, last_path, module, opt, sched, preprocess, labels):
    ckpt = read_checkpoint(last_path) if last_path.is_file() else None
    if ckpt is None:
        raise ModelLoadError(f"--resume: {last_path} does not exist; start without --resume")
    state = ckpt.get("train_state")
    if not state:
        raise ModelLoadError(f"--resume: {last_path} has no optimizer state")
    before = state["config"]
    now = _jsonable_config(config)
    diff = [k for k in _RESUME_MUST_MATCH if before.get(k) != now.get(k)]
    if diff:
        raise ModelLoadError("--resume: settings differ from the interrupted run: " + ", ".join(
            f"{k} {before.get(k)!r} -> {now.get(k)!r}" for k in diff))
    if ckpt["preprocess"] != dataclasses.asdict(preprocess) or ckpt["labels"] != labels:
        raise ModelLoadError("--resume: preprocessing or labels differ from the interrupted run")
    module.load_state_dict(ckpt["state_dict"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    hist_file = last_path.parent / "history.json"
    history = ([EpochStats(**h) for h in json.loads(hist_file.read_text())][: ckpt["epoch"]]
               if hist_file.is_file() else [])
    m = ckpt["metrics"]
    return int(ckpt["epoch"]), float(m.get("best_val_top1", -1.0)), int(m.get("best_epoch", 0)), history


class _EpochBar:
    """One rich progress bar per epoch showing running loss and accuracy."""

    def __init__(self, enabled: bool, steps: int):
        self.enabled, self.steps = enabled, steps
        self.bar = self.task = None

    def __enter__(self):
        if self.enabled:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                MofNCompleteColumn(), TextColumn("loss {task.fields[loss]:.4f}"),
                                TextColumn("acc {task.fields[acc]:.2f}%"), TimeElapsedColumn(),
                                TimeRemainingColumn(), transient=True)
            self.bar.__enter__()
        return self

    def start(self, epoch: int, epochs: int) -> None:
        if self.bar is not None:
            self.task = self.bar.add_task(f"epoch {epoch}/{epochs}", total=self.steps,
                                          loss=float("nan"), acc=0.0)

    def update(self, loss: float, acc: float) -> None:
        if self.bar is not None:
            self.bar.update(self.task, advance=1, loss=loss, acc=acc)

    def finish_epoch(self) -> None:
        if self.bar is not None:
            self.bar.remove_task(self.task)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)
