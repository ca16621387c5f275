"""The trained encoder as a file (config, dims, best weights) and its metrics plot."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import torch

from graph.config import EncoderConfig
from graph.model import Encoder

#: the trained encoder's file in models/encoder
MODEL_FILE = "model.pt"


def save_model(path: Path, cfg: EncoderConfig, encoder_state: dict, dims: dict, run: str) -> None:
    """Write the best encoder weights with what is needed to rebuild it (atomic); the
    config is stored as a plain dict (`load_model` reads files of any version)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    blob = {"config": cfg.model_dump(), "state": encoder_state, "dims": dims, "run": run}
    torch.save(blob, tmp)
    tmp.replace(path)


def stored_config(stored: dict) -> EncoderConfig:
    """The `EncoderConfig` a model file stored as a dict: keys this version does not know
    are dropped, keys it lacks take their defaults."""
    return EncoderConfig.model_validate(
        {k: v for k, v in stored.items() if k in EncoderConfig.model_fields}
    )


def load_model(path: Path) -> tuple[Encoder, EncoderConfig, str]:
    """(encoder in eval mode, its training config, run name) from `save_model`'s file."""
    if not path.exists():
        raise FileNotFoundError(f"no trained encoder at {path}; run the 'train' stage first")
    blob = torch.load(path, weights_only=False)
    cfg, dims = stored_config(blob["config"]), blob["dims"]
    enc = Encoder(
        user_dim=dims["user_dim"],
        sub_dim=dims["sub_dim"],
        hidden=cfg.hidden,
        heads=cfg.heads,
        layers=cfg.layers,
        dropout=cfg.dropout,
        conv=cfg.conv,
    )
    enc.load_state_dict(blob["state"])
    return enc.eval(), cfg, blob["run"]


def plot_metrics(metrics: pa.Table, out: Path, title: str) -> None:
    """Loss parts and validation metrics per epoch, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = metrics.to_pydict()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    for key in ("loss_link", "loss_image"):
        a.plot(d["epoch"], d[key], marker="o", label=key)
    a.set(xlabel="epoch", ylabel="loss", title="training loss")
    a.legend()
    for key in ("val_auc", "posting_acc", "recall_at_k", "image_recall_at_k"):
        b.plot(d["epoch"], d[key], marker="o", label=key)
    b.set(xlabel="epoch", ylim=(0, 1), title="validation")
    b.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
