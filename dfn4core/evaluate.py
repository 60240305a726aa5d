"""Evaluation of a set: optionally enhance each noisy file, score it beside the noisy input, resume, summarise.

Rows go to `scores.csv` as each file finishes (one flushed line per system and file), so a run
that stops resumes where it left off; `summary.json` holds means, 95 % confidence intervals,
counts, package versions and the model's config and checksum. Intrusive metrics run at 16 kHz.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dfn4core.atomic import write_atomically
from dfn4core.streaming import enhance
from dfn4core.errors import ConfigError, Dfn4Error, MetricError
from dfn4core.io import read_audio
from dfn4core.metrics import results
from dfn4core.metrics.inputs import INTRUSIVE_SR, to_rate
from dfn4core.metrics.results import CSV_NAME, RUN_NAME
from dfn4core.metrics.sets import EvalSet, Item, Unmatched, index_folder
from dfn4core.metrics.suite import parse_metrics, score
from dfn4core.model.checkpoint import load_model, tensor_sha256
from dfn4core.model.dfnet4 import DFN4
from dfn4core.model.fuse import fuse_for_inference
from dfn4core.pretrained import file_sha256, resolve_model

logger = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]
JSON_NAME = "summary.json"
MAX_TRIM_MS = 50.0  # larger length differences mean a wrong or misaligned file, not resampling rounding
SYSTEMS = ("noisy", "model", "enhanced")
PRELOAD = ("pesq", "pystoi", "onnxruntime")  # imported once by the forkserver, not by every worker


@dataclass(frozen=True)
class EvalReport:
    """What an evaluation wrote.

    Args:
        csv_path: per-file scores, one row per system and file.
        json_path: the summary written from every row of the CSV.
        summary: the contents of json_path.
        scored: files scored in this run.
        resumed: files already complete in the CSV, skipped.
    """

    csv_path: Path
    json_path: Path
    summary: dict[str, Any]
    scored: int
    resumed: int


@dataclass(frozen=True)
class _Task:
    item: Item
    systems: tuple[str, ...]
    enhanced: Path | None


def evaluate(
    eval_set: EvalSet,
    out_dir: str | Path,
    *,
    model: DFN4 | str | Path | None = None,
    enhanced_dir: str | Path | None = None,
    metrics: str | Sequence[str] | None = None,
    jobs: int = 1,
    device: torch.device | str | None = None,
    on_progress: ProgressFn | None = None,
) -> EvalReport:
    """Scores the noisy files of a set, and the model's or another system's outputs beside them.

    Args:
        eval_set: the files, from `metrics.sets.load_set`.
        out_dir: folder for scores.csv and summary.json; rows already there are kept, not redone.
        model: a DFN4 or a checkpoint path: its `enhance` output of each noisy file is the
            "model" system.
        enhanced_dir: outputs of another system, matched to the noisy files by key: the
            "enhanced" system.
        metrics: names or groups (see `suite.parse_metrics`); None = all the set allows.
        jobs: worker processes; each then runs torch, onnxruntime and BLAS on one thread.
        device: where a model given as a path runs; CPU when None.
        on_progress: called with (files done, files in the set) as each file finishes.

    Returns:
        Paths, the summary, and how many files were scored now or found already done.

    Raises:
        ConfigError: bad metric names, jobs < 1, a results CSV with other columns, or a missing
            enhanced_dir.
        CheckpointError: the model checkpoint cannot be loaded.
    """
    if jobs < 1:
        raise ConfigError(f"jobs must be at least 1, got {jobs}")
    names = parse_metrics(metrics, reference=eval_set.has_reference)
    systems = tuple(s for s, on in zip(SYSTEMS, (True, model is not None, enhanced_dir is not None), strict=True) if on)
    enhanced, enhanced_unmatched = _match_enhanced(eval_set, enhanced_dir)
    net = load_model(model, device, dfn3=True) if isinstance(model, (str, Path)) else model
    card = None if net is None else model_card(net, model)  # of the weights as given
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _claim(out_dir, _identity(eval_set, names, card, enhanced_dir))
    csv_path, header = out_dir / CSV_NAME, results.columns(names)
    done = _finished(csv_path, header, systems)
    tasks = [_Task(i, tuple(s for s in systems if (s, i.key) not in done), enhanced.get(i.key)) for i in eval_set.items]
    todo = [t for t in tasks if t.systems]
    total, finished = len(tasks), len(tasks) - len(todo)
    if on_progress is not None:
        on_progress(finished, total)
    writer = results.RowWriter(csv_path, header)
    try:
        worker_model = model if jobs > 1 and isinstance(model, (str, Path)) else net
        for rows in _run(todo, _ScorerSpec(worker_model, device, names, enhanced_dir), jobs):
            writer.write(rows)
            finished += 1
            if on_progress is not None:
                on_progress(finished, total)
    finally:
        writer.close()
    keys = {i.key for i in eval_set.items}
    rows = [r for r in results.read_rows(csv_path, header) if r["key"] in keys]
    summary = _summary(eval_set, rows, systems, names, enhanced_dir, enhanced_unmatched)
    summary["model"] = card
    text = json.dumps(summary, indent=2) + "\n"
    json_path = _write_text(out_dir / JSON_NAME, text)
    return EvalReport(csv_path, json_path, json.loads(text), len(todo), total - len(todo))


def _identity(
    eval_set: EvalSet, names: tuple[str, ...], card: dict[str, Any] | None, enhanced_dir: str | Path | None
) -> dict[str, Any]:
    """Everything that changes a score: set, folders (resolved), metrics, model checksum, enhanced folder."""
    first = eval_set.items[0] if eval_set.items else None
    return {
        "set": eval_set.name,
        "noisy_dir": _resolved(first.noisy.parent if first else None),
        "clean_dir": _resolved(first.clean.parent if first and first.clean else None),
        "metrics": ",".join(names),
        "model_sha256": None if card is None else card["sha256"],
        "enhanced_dir": _resolved(enhanced_dir),
    }


def _resolved(path: str | Path | None) -> str | None:
    return None if path is None else str(Path(path).resolve())


def _claim(out_dir: Path, run: dict[str, Any]) -> None:
    """Records in RUN_NAME what the rows in out_dir are results of; refuses rows of another set,
    folder, metric list, model or enhanced folder, naming each difference (a system added later,
    such as a model beside noisy rows, is fine). Paths compare resolved, as written by `_identity`."""
    path = out_dir / RUN_NAME
    known = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    changed = []
    for field, value in run.items():
        old = known.get(field)
        if field.endswith("_dir") and old is not None:
            old = _resolved(old)  # a record of an earlier dfn4 may hold the path as typed
        if value is not None and old not in (None, value):
            changed.append(f"{field.replace('_', ' ')} {old}, not {value}")
    if changed:
        raise ConfigError(f"{out_dir} holds results for {'; '.join(changed)}; use another --out folder")
    merged = {**known, **{k: v for k, v in run.items() if v is not None}}
    if merged != known:
        _write_text(path, json.dumps(merged, indent=2) + "\n")


def _write_text(path: Path, text: str) -> Path:
    """Writes a small text file atomically: a reader sees the old or the new content, never a part."""
    return write_atomically(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def _finished(csv_path: Path, header: list[str], systems: tuple[str, ...]) -> set[tuple[str, str]]:
    """(system, key) of the rows already in the CSV; failed rows of `systems` are removed from it, to be retried."""
    rows = results.read_rows(csv_path, header)
    kept = [r for r in rows if r["status"] != "failed" or r["system"] not in systems]
    if len(kept) < len(rows):
        logger.info("%s: retrying %d failed rows", csv_path, len(rows) - len(kept))
        write_atomically(csv_path, lambda tmp: results.write_rows(Path(tmp), header, kept))
    return {(r["system"], r["key"]) for r in kept}


def _summary(
    eval_set: EvalSet,
    rows: list[dict[str, str]],
    systems: tuple[str, ...],
    names: tuple[str, ...],
    enhanced_dir: str | Path | None,
    enhanced_unmatched: list[Unmatched],
) -> dict[str, Any]:
    def listed(files: Sequence[Unmatched]) -> list[dict[str, str]]:
        return [{"path": str(u.path), "reason": u.reason} for u in files]

    return {
        "set": {"name": eval_set.name, "files": len(eval_set.items), "unmatched": listed(eval_set.unmatched)},
        "enhanced_dir": None if enhanced_dir is None else str(enhanced_dir),
        "enhanced_unmatched": listed(enhanced_unmatched),
        "metrics": list(names),
        "intrusive_sr": INTRUSIVE_SR,
        "max_trim_ms": MAX_TRIM_MS,
        "systems": results.summarise(rows, systems, names),
        "versions": {"dfn4": _dfn4_version(), **results.package_versions()},
        "csv": CSV_NAME,
    }


def model_card(net: DFN4, source: DFN4 | str | Path | None = None) -> dict[str, Any]:
    """The model's config and sha256: of the checkpoint file when given a path, else of its weights."""
    if isinstance(source, (str, Path)):
        path = resolve_model(source)  # a shipped model's name -> its file inside the package
        return {
            "path": str(source),
            "sha256": file_sha256(path) if path.is_file() else net.cfg.sha256,  # a DFN3 folder: its graphs
            "sha256_of": "checkpoint file",
            "config": net.cfg.to_dict(),
        }
    digest = tensor_sha256(net.state_dict())
    return {"path": None, "sha256": digest, "sha256_of": "state_dict tensors", "config": net.cfg.to_dict()}


def _dfn4_version() -> str:
    from dfn4core import __version__

    return __version__


def _match_enhanced(eval_set: EvalSet, enhanced_dir: str | Path | None) -> tuple[dict[str, Path], list[Unmatched]]:
    """Enhanced outputs by key; outputs matching no noisy file are listed (missing ones fail their row)."""
    if enhanced_dir is None:
        return {}, []
    by_key, left_out = index_folder(enhanced_dir, eval_set.match_by)
    keys = {i.key for i in eval_set.items}
    left_out += [Unmatched(p, f"no noisy file with key {k!r} in the set") for k, p in by_key.items() if k not in keys]
    return by_key, left_out


@dataclass(frozen=True)
class _ScorerSpec:
    """What a scorer needs; picklable so worker processes can build their own."""

    model: DFN4 | str | Path | None
    device: torch.device | str | None
    metrics: tuple[str, ...]
    enhanced_dir: str | Path | None


def _run(tasks: list[_Task], spec: _ScorerSpec, jobs: int) -> Iterator[list[dict[str, Any]]]:
    """Rows of each task as it finishes: in this process, or over `jobs` worker processes."""
    if jobs == 1 or len(tasks) <= 1:
        scorer = _Scorer(spec, threads=None)
        yield from map(scorer, tasks)
        return
    context = _worker_context()
    with ProcessPoolExecutor(
        min(jobs, len(tasks)), mp_context=context, initializer=_init_worker, initargs=(spec,)
    ) as pool:
        futures = [pool.submit(_score_in_worker, t) for t in tasks]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


def _worker_context() -> multiprocessing.context.BaseContext:
    """Forkserver where there is one (a clean server forks each worker, imported once), else spawn.

    Plain fork is unsafe once torch or onnxruntime have started threads in this process.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__, *PRELOAD])
    return context


_worker_scorer: _Scorer | None = None  # one per worker process, set by _init_worker


def _init_worker(spec: _ScorerSpec) -> None:
    global _worker_scorer
    from threadpoolctl import threadpool_limits

    # `jobs` processes share the cores: one thread each for torch, onnxruntime and BLAS (an
    # OpenBLAS pool per worker spinning on every core halves the speed of each worker).
    torch.set_num_threads(1)
    threadpool_limits(1)
    _worker_scorer = _Scorer(spec, threads=1)


def _score_in_worker(task: _Task) -> list[dict[str, Any]]:
    assert _worker_scorer is not None, "worker not initialised"
    return _worker_scorer(task)


class _Scorer:
    """Scores every system of one noisy file against its reference."""

    def __init__(self, spec: _ScorerSpec, threads: int | None):
        model = spec.model
        loaded = load_model(model, spec.device, dfn3=True) if isinstance(model, (str, Path)) else model
        self.model = None if loaded is None else fuse_for_inference(loaded)  # once, not per file's Enhancer
        self.metrics, self.enhanced_dir, self.threads = spec.metrics, spec.enhanced_dir, threads

    def __call__(self, task: _Task) -> list[dict[str, Any]]:
        item = task.item
        try:
            noisy, noisy_sr = _read_mono(item.noisy)
            reference = None if item.clean is None else _read_mono(item.clean)
        except Dfn4Error as err:
            return [self._failed(s, item, task, str(err)) for s in task.systems]
        rows = []
        for system in task.systems:
            try:
                estimate, estimate_sr = self._estimate(system, noisy, noisy_sr, task)
                rows.append(self._score(system, item, task, reference, estimate, estimate_sr))
            except Dfn4Error as err:
                rows.append(self._failed(system, item, task, str(err)))
            except (RuntimeError, OSError, ValueError, MemoryError) as err:
                logger.debug("%s: %s failed", item.noisy, system, exc_info=True)
                rows.append(self._failed(system, item, task, f"unexpected error: {type(err).__name__}: {err}"))
        return rows

    def _estimate(self, system: str, noisy: np.ndarray, sr: int, task: _Task) -> tuple[np.ndarray, int]:
        if system == "noisy":
            return noisy, sr
        if system == "model":
            return np.asarray(enhance(self.model, noisy, sr)), sr
        if task.enhanced is None:
            raise MetricError(f"no enhanced file with key {task.item.key!r} in {self.enhanced_dir}")
        return _read_mono(task.enhanced)

    def _score(
        self,
        system: str,
        item: Item,
        task: _Task,
        reference: tuple[np.ndarray, int] | None,
        estimate: np.ndarray,
        sr: int,
    ) -> dict[str, Any]:
        est = to_rate(estimate.astype(np.float64), sr, INTRUSIVE_SR)
        ref, trimmed = None, 0
        if reference is not None:
            ref = to_rate(reference[0].astype(np.float64), reference[1], INTRUSIVE_SR)
            trimmed = abs(ref.size - est.size)
            if trimmed > MAX_TRIM_MS * INTRUSIVE_SR / 1000:
                raise MetricError(
                    f"lengths differ by {trimmed / INTRUSIVE_SR * 1000:.0f} ms (more than {MAX_TRIM_MS:g} ms)"
                )
            n = min(ref.size, est.size)
            ref, est = ref[:n], est[:n]
        values, missing = score(est, INTRUSIVE_SR, self.metrics, reference=ref, dnsmos_threads=self.threads)
        row = self._row(system, item, task, "ok" if not missing else "partial" if values else "failed")
        row.update(
            values, sr_reference=None if reference is None else reference[1], sr_estimate=sr, trimmed_samples=trimmed
        )
        row[results.NOTES_COLUMN] = _notes(missing)
        return row

    def _row(self, system: str, item: Item, task: _Task, status: str) -> dict[str, Any]:
        path = {"noisy": item.noisy, "model": None, "enhanced": task.enhanced}[system]
        return {"system": system, "key": item.key, "status": status, "reference": item.clean, "estimate": path}

    def _failed(self, system: str, item: Item, task: _Task, reason: str) -> dict[str, Any]:
        return {**self._row(system, item, task, "failed"), results.NOTES_COLUMN: reason}


def _read_mono(path: Path) -> tuple[np.ndarray, int]:
    """A whole file, channels averaged; ((N,), sr)."""
    audio, sr = read_audio(path)
    return audio.mean(axis=0), sr


def _notes(missing: dict[str, str]) -> str:
    """'m1, m2: reason; m3: other reason' (metrics sharing a reason grouped)."""
    by_reason: dict[str, list[str]] = {}
    for metric, reason in missing.items():
        by_reason.setdefault(reason, []).append(metric)
    return "; ".join(f"{', '.join(ms)}: {reason}" for reason, ms in by_reason.items())
