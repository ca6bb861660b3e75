"""`deltaprop gradcheck`, `bias-study` and `draw` end to end, and their bad-input errors."""

from __future__ import annotations

import json

import pytest

import deltaprop as dp
from conftest import JSON_BEFORE, assert_same_json
from deltaprop import bias_study, cli


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`deltaprop ARGS` in-process: (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(list(args))
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def one_line_error(err: str) -> bool:
    return err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("bias", ["learned", "frozen", "none", "unit"])
@pytest.mark.parametrize("config", [
    [],
    ["--sizes", "3,4,3", "--activation", "tanh", "--output", "softmax", "--loss",
     "cross_entropy", "--batch", "4"],
    ["--sizes", "2,3,3,1", "--output", "sigmoid", "--loss", "binary_cross_entropy",
     "--reduction", "sum"],
])
def test_gradcheck_passes_for_every_bias_mode(capsys, bias: str, config: list[str]) -> None:
    code, out, _ = run(capsys, "gradcheck", "--bias", bias, *config)
    assert code == 0, out
    assert "PASS" in out and "FAIL" not in out


@pytest.mark.parametrize("bias", ["learned", "frozen", "unit"])
def test_gradcheck_layer_sum_fails(capsys, bias: str) -> None:
    code, out, _ = run(capsys, "gradcheck", "--bias", bias, "--bias-rule", "layer-sum")
    assert code == 1
    assert "FAIL" in out and "mistaken layer sum" in out


def test_gradcheck_json(capsys) -> None:
    code, out, _ = run(capsys, "gradcheck", "--format", "json", "--bias-rule", "layer-sum")
    result = json.loads(out)
    assert code == 1 and result["passed"] is False
    bad = {(row["l"], row["param"]) for row in result["rows"] if not row["ok"]}
    assert bad == {(1, "b"), (2, "b")}  # the weights still pass: only the bias rule is wrong


def test_gradcheck_saved_model(tmp_path, capsys) -> None:
    net = dp.Network([2, 3, 2], activation="tanh", bias="unit", dtype="float64", seed=1)
    path = tmp_path / "m.safetensors"
    net.save(path)
    code, out, _ = run(capsys, "gradcheck", "--model", str(path), "--data", "xor", "--batch", "4")
    assert code == 0 and "PASS" in out


def test_bias_study_cli_json_and_plot(tmp_path, capsys) -> None:
    plot = tmp_path / "curves.png"
    code, out, _ = run(capsys, "bias-study", "--data", "circles", "--seeds", "1", "--epochs", "3",
                       "--modes", "learned,none", "--out-plot", str(plot), "--json")
    assert code == 0
    study = json.loads(out)
    assert [row["mode"] for row in study["rows"]] == ["learned", "none"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name, args", [
    ("bias-study-plot.json", ["--data", "xor", "--seeds", "2", "--epochs", "3", "--target",
                              "0.8", "--subset", "200", "--modes", "learned,unit,none"]),
    ("bias-study.json", ["--data", "circles", "--seeds", "1", "--epochs", "2", "--modes",
                         "learned,frozen-1"]),
])
def test_bias_study_json_format_is_unchanged(tmp_path, capsys, name, args) -> None:
    """The JSON users' scripts read has the format it had before Study: keys, order, nesting,
    ``plot`` only with --out-plot, null where no seed reached the target or ``unit`` did not
    run. Its numbers come from training and are checked by test_bias_study; here only their
    types (another machine's BLAS may change their last bits)."""
    plot = ["--out-plot", str(tmp_path / "curves.png")] if "plot" in name else []
    code, out, _ = run(capsys, "bias-study", *args, *plot, "--json")
    assert code == 0
    before = json.loads((JSON_BEFORE / name).read_text())
    assert_same_json(json.loads(out), before, rtol=None, unchecked={"plot"})


def test_bias_study_json_is_the_study(capsys) -> None:
    """--json prints Study.as_dict() of the same run, number for number (same machine)."""
    code, out, _ = run(capsys, "bias-study", "--data", "circles", "--seeds", "2", "--epochs",
                       "2", "--modes", "learned,unit,none", "--json")
    assert code == 0
    printed = json.loads(out)
    study = bias_study.run("circles", seeds=2, epochs=2, modes=("learned", "unit", "none"))
    expected = json.loads(json.dumps(study.as_dict()))
    assert_same_json(printed, expected, rtol=0.0, unchecked={"seconds"})
    for row, result in zip(printed["rows"], study.rows, strict=True):  # JSON = attributes
        assert row["mode"] == result.mode
        for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
            stats = getattr(result, key)
            assert row[key] == {"mean": stats.mean, "std": stats.std,
                                "values": stats.values.tolist()}, key
        assert row["curves"]["loss"] == result.curves.loss.tolist()
        # the final validation accuracy is the curve's last epoch
        assert row["val_accuracy"]["values"] == [c[-1] for c in row["curves"]["val_accuracy"]]
    assert printed["memory"]["bias_count"] == study.memory.bias_count == 8 + 2


def test_bias_study_cli_text(capsys) -> None:
    code, out, _ = run(capsys, "bias-study", "--data", "xor", "--seeds", "1", "--epochs", "2",
                       "--modes", "learned,unit")
    assert code == 0
    assert "memory" in out and "learned" in out and "unit" in out


def test_draw_cli(tmp_path, capsys) -> None:
    net = dp.Network([2, 3, 2], seed=0)
    model, png = tmp_path / "m.safetensors", tmp_path / "m.png"
    net.save(model)
    code, out, _ = run(capsys, "draw", str(model), "--out", str(png), "--data", "circles")
    assert code == 0 and "decision regions" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args, status, words", [
    (["explain", "--no-such-option"], 2, "no such option"),
    (["gradcheck", "--bias", "sometimes"], 2, "--bias"),
    (["explain", "--sizes", "2,x,2"], 2, "sizes"),
    (["explain", "--sizes", "2,20,2"], 1, "--force"),
    (["explain", "--batch", "0"], 2, "--batch"),
    (["explain", "--activation", "wiggle"], 1, "activation"),
    (["explain", "--data", "circles"], 2, "--model"),
    (["gradcheck", "--model", "missing.safetensors", "--data", "circles"], 1, "missing"),
    (["draw", "missing.safetensors"], 1, "missing"),
    (["bias-study", "--data", "no-such-set"], 1, "unknown data set"),
    (["bias-study", "--data", "circles", "--modes", "learned,sometimes"], 1, "sometimes"),
    (["bias-study", "--data", "circles", "--seeds", "0"], 1, "seeds"),
])
def test_bad_input_is_one_line(capsys, args, status, words) -> None:
    code, _, err = run(capsys, *args)
    assert code == status
    assert one_line_error(err), err
    assert words.lower() in err.lower()


def test_bias_study_refuses_regression(tmp_path, capsys) -> None:
    csv = tmp_path / "reg.csv"
    csv.write_text("a,b,y\n" + "".join(f"{i},{i % 3},{i * 0.37:.2f}\n" for i in range(40)))
    code, _, err = run(capsys, "bias-study", "--data", str(csv))
    assert code == 1 and one_line_error(err) and "classification" in err


def test_model_that_does_not_load(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a model at all")
    for command in (["explain", "--model", str(bad), "--data", "circles"],
                    ["draw", str(bad)]):
        code, _, err = run(capsys, *command)
        assert code == 1 and one_line_error(err) and "bad.safetensors" in err


def test_draw_regions_need_2d_data(tmp_path, capsys) -> None:
    net = dp.Network([2, 3, 2], seed=0)
    model = tmp_path / "m.safetensors"
    net.save(model)
    csv = tmp_path / "three.csv"
    csv.write_text("a,b,c,label\n" + "".join(f"{i},{i % 5},{i % 7},{i % 2}\n" for i in range(40)))
    code, _, err = run(capsys, "draw", str(model), "--out", str(tmp_path / "x.png"),
                       "--data", str(csv))
    assert code == 1 and one_line_error(err) and "2-D" in err
    code, _, err = run(capsys, "draw", str(model), "--out", str(tmp_path / "x.gif"))
    assert code == 1 and one_line_error(err) and "format" in err


def test_help_has_examples(capsys) -> None:
    for command in ("explain", "gradcheck", "bias-study", "draw"):
        code, out, _ = run(capsys, command, "--help")
        assert code == 0 and "Example" in out
    _, out, _ = run(capsys, "gradcheck", "--help")
    assert "Exit status 0" in out
