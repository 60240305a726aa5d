"""The run directory's records: resolved configs and metrics.jsonl (TensorBoard when installed)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


class Logbook:
    """Averages step terms over `every` steps and appends them (and validations) to metrics.jsonl.

    Args:
        run_dir: the run directory.
        enabled: False on ranks other than 0, which write nothing.
    """

    def __init__(self, run_dir: Path, enabled: bool = True):
        self.path = run_dir / "metrics.jsonl"
        self.enabled = enabled
        self._sums: dict[str, tuple[float, int]] = {}
        self._tb = None
        if enabled:
            run_dir.mkdir(parents=True, exist_ok=True)
            self._tb = _tensorboard(run_dir / "tensorboard")

    def write_configs(self, train_cfg, data_cfg) -> None:
        from dfn4core.train.config import dump_toml

        (self.path.parent / "train.toml").write_text(dump_toml(train_cfg.to_dict()))
        (self.path.parent / "data.toml").write_text(dump_toml(data_cfg.to_dict()))

    def truncate_after(self, step: int) -> None:
        """Drop records past `step` (left by a run that died after its last checkpoint), and a line
        that is not a whole record (a crash while appending it), with a warning."""
        if not self.path.exists():
            return
        kept = []
        for number, line in enumerate(self.path.read_text().splitlines(), 1):
            try:
                record = json.loads(line) if line.strip() else None
            except ValueError:
                logger.warning("%s: dropping line %d, not a whole record (%.40r)", self.path, number, line)
                continue
            if isinstance(record, dict) and record.get("step", 0) <= step:
                kept.append(line)
        self.path.write_text("".join(line + "\n" for line in kept))

    def add(self, step: int, values: dict[str, float], lr: float, every: int) -> None:
        for k, v in values.items():
            total, count = self._sums.get(k, (0.0, 0))
            self._sums[k] = (total + v, count + 1)
        if step % every == 0 and self._sums:
            means = {k: total / count for k, (total, count) in self._sums.items()}
            self.record({"step": step, "kind": "train", "lr": lr, **means})
            self._sums = {}

    def record(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        row = {"time": round(time.time(), 3), **row}
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        if self._tb is not None:
            for k, v in row.items():
                if isinstance(v, (int, float)) and k not in ("step", "time"):
                    self._tb.add_scalar(f"{row.get('kind', 'train')}/{k}", v, row["step"])

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def _tensorboard(folder: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    logger.info("TensorBoard logs in %s", folder)
    return SummaryWriter(str(folder))

