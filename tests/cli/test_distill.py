from pathlib import Path

from typer.testing import CliRunner

from dfn4cli.main import app

runner = CliRunner()


def test_distill_help():
    result = runner.invoke(app, ["distill", "--help"])
    assert result.exit_code == 0 and "--teacher" in result.output and "--resume" in result.output


def test_distill_calls_the_library_with_the_student_config(tmp_path, monkeypatch):
    import dfn4core.train.distill as library
    from dfn4core.train.runner import TrainResult

    teacher, data = tmp_path / "t.pt", tmp_path / "data.toml"
    teacher.write_bytes(b"")
    data.write_text("")
    seen = {}

    def fake(cfg, data_cfg, out, teacher_path, **kwargs):
        seen.update(cfg=cfg, out=out, teacher=teacher_path, **kwargs)
        return TrainResult(None, Path(out), cfg.steps, 0, Path(out) / "checkpoints" / "last.pt", None, None)

    monkeypatch.setattr(library, "distill", fake)
    monkeypatch.setattr("dfn4core.train.resume.load_data_config", lambda path: "DATA")
    args = ["distill", "--teacher", str(teacher), "--data", str(data), "-o", str(tmp_path / "run"), "--steps", "3", "--device", "cpu"]
    result = runner.invoke(app, [*args, "--init", "lite"])
    assert result.exit_code == 0, result.output
    assert "3 steps" in result.output
    assert seen["cfg"].variant == "lite" and seen["cfg"].steps == 3 and seen["teacher"] == str(teacher)
    assert seen["cfg"].init == "lite"
    assert seen["resume"] is False and str(seen["device"]) == "cpu"


def test_train_and_distill_take_the_same_run_options():
    import dataclasses

    import typer.main

    from dfn4cli._options import RunOptions

    def options(name):
        command = typer.main.get_command(app).commands[name]
        return {p.name: (p.opts, p.secondary_opts, p.required, p.default, p.help) for p in command.params}

    train, distill = options("train"), options("distill")
    shared = [f.name for f in dataclasses.fields(RunOptions)]
    assert len(shared) == 12 and all(train[name] == distill[name] for name in shared)
    assert set(distill) - set(train) == {"teacher"}
