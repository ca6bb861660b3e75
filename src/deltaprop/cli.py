"""Click commands: train, evaluate, predict, info, explain, ...; heavy imports inside.

Results go to standard output, progress and messages to standard error. A user error (bad
data, a bad model file, an impossible option) ends with one line ``error: …`` on standard
error and exit status 1; a wrong command line with status 2; Ctrl-C with 130. Nothing here
is imported at start-up but Click, so ``deltaprop --help`` answers at once.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from deltaprop.errors import ConfigError, DeltapropError


def _fail(message: str, status: int = 1) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(status)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``deltaprop`` command."""
    try:
        status = cli.main(args=argv, prog_name="deltaprop", standalone_mode=False)
    except click.exceptions.UsageError as e:
        hint = f" (see 'deltaprop {e.ctx.info_name} --help')" if e.ctx else ""
        _fail(f"{e.format_message()}{hint}".replace("\n", " "), 2)
    except click.exceptions.Abort:
        _fail("interrupted", 130)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except click.ClickException as e:
        _fail(e.format_message().replace("\n", " "), e.exit_code)
    except DeltapropError as e:  # a user can cause and fix it; anything else is a bug
        _fail(str(e).splitlines()[0] if str(e) else type(e).__name__, 1)
    sys.exit(status if isinstance(status, int) else 0)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="deltaprop", message="deltaprop %(version)s")
def cli() -> None:
    """Train multilayer perceptrons by backpropagation, and see every number of it.

    \b
    Examples:
      deltaprop train                              # digits, the bundled default
      deltaprop train --data fashion-mnist --hidden 256,128 --batch-size 128 --epochs 10
      deltaprop explain                            # one backprop step, every number
      deltaprop info model.safetensors
    """


# ------------------------------------------------------------------------ shared options
def _hidden(ctx: click.Context, param: click.Parameter, value: str) -> list[int]:
    try:
        sizes = [int(s) for s in value.split(",") if s.strip()]
    except ValueError:
        raise click.BadParameter(f"expected sizes like 256,128; got {value!r}") from None
    if any(s < 1 for s in sizes):
        raise click.BadParameter(f"sizes must be >= 1; got {value!r}")
    return sizes


def _rates(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[float, ...]:
    """``--dropout 0.2`` or ``0.2,0.5``: numbers in [0, 1)."""
    if value is None:
        return ()
    try:
        rates = tuple(float(s) for s in value.split(",") if s.strip())
    except ValueError:
        raise click.BadParameter(f"expected rates like 0.2 or 0.2,0.5; got {value!r}") from None
    if not rates or any(not 0 <= p < 1 for p in rates):
        raise click.BadParameter(f"rates must be in [0, 1); got {value!r}")
    return rates


def _data_options(f: Any) -> Any:
    f = click.option(
        "--data-dir",
        type=click.Path(file_okay=False),
        default=None,
        help="Folder of fashion-mnist/mnist IDX files (default: Debian's dataset-fashion-mnist "
        "location, or $DELTAPROP_FASHION_MNIST).",
    )(f)
    f = click.option(
        "--data",
        default="digits",
        show_default=True,
        help="Data set name (digits, iris, wine, breast-cancer, diabetes, xor, moons, circles, "
        "spirals, fashion-mnist, mnist), or a file: .csv/.tsv (header optional), .parquet "
        "(pip install 'deltaprop[parquet]'), .npz with X and y, .npy features (memory-mapped; "
        "--target LABELS.npy), or a folder of IDX files.",
    )(f)
    return f


# ------------------------------------------------------------------------ train
@cli.command()
@_data_options
@click.option("--target", default=None,
              help="CSV column to predict (default: the last); for a scipy.sparse .npz, the "
                   "labels' .npy file.")
@click.option("--hidden", default="128", show_default=True, callback=_hidden,
              help="Hidden layer sizes, comma-separated.")
@click.option("--activation", default="relu", show_default=True, help="Hidden activation.")
@click.option("--output", default=None,
              help="Output activation (default: softmax for classes, identity for regression).")
@click.option("--loss", default=None,
              help="Loss (default: cross_entropy for classes, mse for regression).")
@click.option("--optimizer", default="adam", show_default=True,
              help="sgd, adagrad, rmsprop, adam, adamw, nadam.")
@click.option("--lr", type=float, default=None,
              help="Learning rate (default: 0.001; sgd 0.05 — the command's own default, where "
              "deltaprop.optim.SGD() has 0.01).")
@click.option("--schedule", type=click.Choice(["constant", "cosine"]), default="constant",
              show_default=True, help="Learning rate over the epochs: constant, or cosine "
              "annealing from --lr to 0 at the last epoch.")
@click.option("--momentum", type=float, default=None,
              help="Momentum (sgd, rmsprop; default: sgd 0.9 — the command's own default, where "
              "deltaprop.optim.SGD() has 0).")
@click.option("--batch-size", type=click.IntRange(min=0), default=32, show_default=True,
              help="Samples per step; 1 is online learning, 0 the full batch.")
@click.option("--epochs", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--bias", type=click.Choice(["learned", "frozen", "none", "unit"]),
              default=None, help="Bias mode of every layer (default: learned; none in "
              "layers with --batch-norm, whose β plays its part).")
@click.option("--bias-init", type=float, default=0.0, show_default=True)
@click.option("--init", "init", default="he_normal", show_default=True, help="Weight init.")
@click.option("--weight-decay", type=float, default=0.0, show_default=True)
@click.option("--decay-bias/--no-decay-bias", default=False, show_default=True,
              help="Let weight decay, --l1 and --max-norm act on biases too.")
@click.option("--dropout", callback=_rates, default=None, metavar="P[,P…]",
              help="Dropout: drop each hidden neuron with probability P in training "
              "(one P for all hidden layers, or one per hidden layer).")
@click.option("--l1", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="L1 penalty λ₁: λ₁·sign(w) added to the gradient.")
@click.option("--max-norm", type=click.FloatRange(min=0, min_open=True), default=None,
              help="After each update, rescale every neuron's incoming weights to norm <= C.")
@click.option("--batch-norm", is_flag=True,
              help="Batch normalization between z and σ in every hidden layer.")
@click.option("--reduction", type=click.Choice(["mean", "sum"]), default="mean",
              show_default=True, help="Batch gradient: mean or sum of per-sample gradients.")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32",
              show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--val-split", type=click.FloatRange(0, 1, max_open=True), default=0.1,
              show_default=True,
              help="Fraction of the training data held out for validation.")
@click.option("--patience", type=click.IntRange(min=1), default=None,
              help="Early stopping: epochs without validation improvement (best weights kept).")
@click.option("--out", "out", type=click.Path(dir_okay=False), default="model.safetensors",
              show_default=True, help="Where to write the model.")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=None,
              help="Write a checkpoint (model + optimizer state) every N epochs.")
@click.option("--checkpoint", "checkpoint_path", type=click.Path(dir_okay=False), default=None,
              help="Checkpoint file (default: OUT with .ckpt before the suffix).")
@click.option("--resume", type=click.Path(dir_okay=False), default=None,
              help="Continue from a checkpoint; ends as the uninterrupted run would.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="Write loss/accuracy curves (train vs validation) to this PNG.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary object.")
@click.option("--quiet", "-q", is_flag=True, help="No progress and no table.")
@click.option("--distributed", is_flag=True,
              help="Data-parallel across the processes of mpirun (see docs/distributed.md).")
def train(**opts: Any) -> None:
    """Train an MLP on a data set, report test metrics and save the model.

    \b
    Examples:
      deltaprop train
      deltaprop train --data fashion-mnist --hidden 256,128 --batch-size 128 --epochs 10
      deltaprop train --data my.csv --target label --hidden 32 --plot curves.png
      deltaprop train --data tfidf.npz --target labels.npy   # scipy.sparse.save_npz rows
      deltaprop train --optimizer sgd --lr 0.1 --momentum 0.9 --bias unit
      deltaprop train --data fashion-mnist --hidden 1024,1024 --batch-norm --dropout 0.3
      deltaprop train --checkpoint-every 5 --out m.safetensors   # then --resume m.ckpt.safetensors
    """
    from deltaprop import jobs

    ctx = click.get_current_context()
    explicit = frozenset(
        k for k in opts if ctx.get_parameter_source(k) == click.core.ParameterSource.COMMANDLINE
    )
    options = jobs.TrainOptions(**(opts | {"hidden": tuple(opts["hidden"])}), explicit=explicit)
    if options.distributed:
        from deltaprop import distributed

        with distributed.abort_on_error():  # one rank's error ends every rank
            summary = jobs.train(options)
        if not distributed.is_root():
            return  # rank 0 reports
    else:
        summary = jobs.train(options)
    if opts["as_json"]:
        click.echo(json.dumps(summary))
        return
    if not opts["quiet"]:
        jobs.print_history(summary)
    test = summary["test"]
    parts = [f"test loss {test['loss']:.4f}"]
    if "accuracy" in test:
        parts.append(f"test accuracy {test['accuracy']:.4f}")
    if "r2" in test:
        parts.append(f"test RMSE {test['rmse']:.4g}, R² {test['r2']:.4f}")
    click.echo(", ".join(parts) + f"; model saved to {summary['model']}")


# ------------------------------------------------------------------------ evaluate
@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@_data_options
@click.option("--target", default=None,
              help="CSV column holding the labels/targets; for a scipy.sparse .npz, the labels' "
                   ".npy file.")
@click.option("--split", type=click.Choice(["test", "train"]), default="test", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def evaluate(model: str, data: str, data_dir: str | None, target: str | None, split: str,
             as_json: bool) -> None:
    """Loss and accuracy (with a confusion matrix) of a saved model on a data set.

    \b
    Example:
      deltaprop evaluate model.safetensors --data digits
    """
    from deltaprop import jobs

    result = jobs.evaluate(model, data, data_dir, target, split)
    if as_json:
        click.echo(json.dumps(result))
    else:
        jobs.print_evaluation(result)


# ------------------------------------------------------------------------ predict
@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("input", type=click.Path(exists=False))
@click.option("--out", "out", type=click.Path(dir_okay=False), default="-", show_default=True,
              help="CSV file to write ('-' for standard output).")
def predict(model: str, input: str, out: str) -> None:  # `input`: the user's word
    """Predict for a CSV/NPZ/IDX file of samples; write CSV with labels and probabilities.

    \b
    Example:
      deltaprop predict model.safetensors samples.csv --out predictions.csv
    """
    from deltaprop import jobs

    text = jobs.predict_csv(model, input)
    if out == "-":
        click.echo(text, nl=False)
    else:
        from deltaprop.io import write_atomically

        write_atomically(Path(out), text.encode())


# ------------------------------------------------------------------------ info
@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the metadata as JSON.")
def info(model: str, as_json: bool) -> None:
    """Layers, parameter counts, bias modes and training metadata of a model file.

    \b
    Example:
      deltaprop info model.safetensors
    """
    from deltaprop import jobs

    result = jobs.info(model)
    if as_json:
        click.echo(json.dumps(result))
    else:
        jobs.print_info(result)


# ------------------------------------------------------------------------ teaching commands
def _teach_options(f: Any) -> Any:
    """Options shared by explain and gradcheck: a small configuration or a saved model."""
    options = [
        click.option("--sizes", default="2,3,2", show_default=True, callback=_hidden,
                     help="Layer sizes n_0,n_1,...,n_L (inputs first)."),
        click.option("--activation", default="sigmoid", show_default=True,
                     help="Hidden activation σ."),
        click.option("--output", default="sigmoid", show_default=True,
                     help="Output activation."),
        click.option("--loss", default="mse", show_default=True,
                     help="mse, cross_entropy (softmax output) or binary_cross_entropy."),
        click.option("--bias", type=click.Choice(["learned", "frozen", "none", "unit"]),
                     default=None, help="Bias mode of every layer (default: learned; none "
                     "with --batch-norm)."),
        click.option("--bias-init", type=float, default=None,
                     help="Every bias's value (default: small random values, 2 decimals)."),
        click.option("--batch-norm", is_flag=True,
                     help="Batch normalization between z and σ in the hidden layers (their "
                     "bias then defaults to none)."),
        click.option("--batch", type=int, default=2, show_default=True,
                     help="Samples in the mini-batch."),
        click.option("--reduction", type=click.Choice(["mean", "sum"]), default="mean",
                     show_default=True, help="Batch gradient: mean or sum over samples."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--model", type=click.Path(dir_okay=False), default=None,
                     help="A saved model instead of a configuration (with --data)."),
        click.option("--data", default=None,
                     help="With --model: data set whose first --batch training samples are used."),
        click.option("--data-dir", type=click.Path(file_okay=False), default=None,
                     help="Folder of fashion-mnist/mnist IDX files."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _teach_problem(opts: dict[str, Any]) -> Any:
    """(net, X, Y) from the shared options."""
    from deltaprop import explain as explain_module

    if opts["batch"] < 1:
        raise click.BadParameter(f"must be >= 1; got {opts['batch']}", param_hint="--batch")
    if opts["model"] and (opts["batch_norm"] or opts.get("dropout")):
        flag = "--batch-norm" if opts["batch_norm"] else "--dropout"
        raise click.UsageError(f"{flag} applies to the demo network, not to --model (a saved "
                               "model's own batch norm and dropout are traced)")
    if opts["model"]:
        if not opts["data"]:
            raise click.UsageError("--model needs --data NAME (the samples to run it on)")
        return explain_module.model_problem(opts["model"], opts["data"], m=opts["batch"],
                                            data_dir=opts["data_dir"])
    if opts["data"]:
        raise click.UsageError("--data applies only with --model")
    return explain_module.demo_problem(
        opts["sizes"], activation=opts["activation"], output=opts["output"], loss=opts["loss"],
        bias=opts["bias"], bias_init=opts["bias_init"], m=opts["batch"], seed=opts["seed"],
        dropout=opts.get("dropout") or 0.0, batch_norm=opts["batch_norm"])


@cli.command()
@_teach_options
@click.option("--lr", type=float, default=0.5, show_default=True, help="Learning rate α.")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text",
              show_default=True, help="Terminal layout, a markdown document, or every number "
              "as JSON.")
@click.option("--force", is_flag=True,
              help="Print layers of more than 8 neurons or batches of more than 4 samples.")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.0,
              show_default=True, help="Drop hidden neurons with this probability: the step "
              "shows the mask m and (8) with m/(1 − p).")
def explain(**opts: Any) -> None:
    """One forward pass, backward pass and SGD step, every number with its equation.

    Prints, layer by layer (l = 1 … L as in seed 000): z and a = σ(z) (2), δ^L (9),
    δ^l (8), ∂C/∂w_kj = δ_k a_j (10), ∂C/∂b_k = δ_k (14), the new w (11) and b (15);
    per-sample δ rows, then their sum and mean over the batch. Weights and inputs of the
    default problem have 2 decimals, so every number can be checked by hand. Refuses a layer
    of more than 8 neurons or more than 4 samples unless --force.

    \b
    Examples:
      deltaprop explain
      deltaprop explain --bias frozen --format markdown
      deltaprop explain --sizes 3,4,3 --activation tanh --output softmax --loss cross_entropy
      deltaprop explain --model m.safetensors --data circles --batch 3
      deltaprop explain --dropout 0.5                   # the mask and its effect on δ
      deltaprop explain --batch-norm --batch 3          # δ through the batch statistics
    """
    from deltaprop import explain as explain_module
    from deltaprop import report

    net, X, Y = _teach_problem(opts)
    trace = explain_module.trace(net, X, Y, lr=opts["lr"], reduction=opts["reduction"],
                                 force=opts["force"])
    if opts["fmt"] == "json":
        click.echo(report.explain_json(trace))
    elif opts["fmt"] == "markdown":
        click.echo(report.explain_markdown(trace), nl=False)
    else:
        from rich.console import Console

        report.explain_text(trace, Console(highlight=False))


@cli.command()
@_teach_options
@click.option("--bias-rule", type=click.Choice(["delta", "layer-sum"]), default="delta",
              show_default=True, help="Bias gradient checked: the neuron's own δ (eq. 14), or "
              "seed 002's mistaken sum of the layer's δs.")
@click.option("--eps", type=float, default=1e-5, show_default=True, help="Finite-difference step.")
@click.option("--tol", type=float, default=1e-6, show_default=True,
              help="Largest accepted relative error.")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text",
              show_default=True)
def gradcheck(**opts: Any) -> None:
    """Compare backprop's gradients with central differences, in float64.

    A table per layer: the largest absolute and relative error of ∂C/∂W and of ∂C/∂b
    separately, then a PASS/FAIL verdict with the tolerance. Exit status 0 when the check
    passes, 1 when it fails. --bias-rule layer-sum checks seed 002's mistaken rule (every
    bias corrected by the sum of its layer's δs) and fails.

    \b
    Examples:
      deltaprop gradcheck
      deltaprop gradcheck --bias unit --activation tanh --sizes 3,4,2
      deltaprop gradcheck --bias-rule layer-sum          # exit status 1: FAIL
      deltaprop gradcheck --model m.safetensors --data circles --batch 4
    """
    from deltaprop import gradcheck as gradcheck_module
    from deltaprop import report

    net, X, Y = _teach_problem(opts)
    result = gradcheck_module.check(net, X, Y, opts["reduction"], opts["eps"], opts["tol"],
                                    bias_rule=opts["bias_rule"])
    if opts["fmt"] == "json":
        click.echo(json.dumps(report.gradcheck_dict(result)))
    elif opts["fmt"] == "markdown":
        click.echo(report.gradcheck_markdown(result), nl=False)
    else:
        from rich.console import Console

        report.gradcheck_text(result, Console(highlight=False))
    if not result.passed:
        click.get_current_context().exit(1)


@cli.command("bias-study")
@_data_options
@click.option("--seeds", type=int, default=3, show_default=True, help="Network seeds per mode.")
@click.option("--epochs", type=int, default=None, help="Epochs (default: per data set).")
@click.option("--hidden", default=None, help="Hidden sizes, e.g. 16,16 (default: per data set).")
@click.option("--batch-size", type=int, default=None, help="Default: per data set.")
@click.option("--lr", type=float, default=None, help="SGD (momentum 0.9) learning rate.")
@click.option("--activation", default="relu", show_default=True)
@click.option("--target", type=float, default=None,
              help="Validation accuracy whose first epoch is reported (default: per data set).")
@click.option("--subset", type=int, default=None,
              help="Training samples used (default: 12000 for fashion-mnist/mnist, else all).")
@click.option("--modes", default=",".join(["learned", "unit", "frozen-0", "frozen-1", "none",
                                           "none+batch-norm", "layer-sum"]), show_default=True)
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float64",
              show_default=True)
@click.option("--out-plot", type=click.Path(dir_okay=False), default=None,
              help="Write the learning curves per mode to this PNG/SVG.")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown"]), default="text",
              show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print every number as one JSON object.")
def bias_study(**opts: Any) -> None:
    """Seed 003's experiment: the same network trained with each bias treatment.

    Modes: learned, unit (a bias unit with constant activation 1), frozen-0 and frozen-1
    (never updated), none, none+batch-norm (no bias; batch norm's β shifts instead), and
    layer-sum (seed 002's mistaken rule, teaching only). Prints
    final train/validation loss and accuracy (mean ± std over seeds), epochs to reach a
    target accuracy, and the memory biases take next to weights. Defaults per data set keep
    a run near a minute on 2 cores (fashion-mnist/mnist use a training subset; the output
    says so).

    \b
    Examples:
      deltaprop bias-study --data circles --out-plot circles.png
      deltaprop bias-study --data digits --seeds 5 --json
      deltaprop bias-study --data fashion-mnist --epochs 5 --modes learned,none
    """
    import dataclasses

    from deltaprop import bias_study as study_module
    from deltaprop import report

    hidden = _hidden(None, None, opts["hidden"]) if opts["hidden"] is not None else None  # type: ignore[arg-type]
    modes = [m.strip() for m in opts["modes"].split(",") if m.strip()]
    progress = None
    if sys.stderr.isatty() and not opts["as_json"]:
        from rich.console import Console

        status = Console(stderr=True).status("training")
        status.start()

        def progress(mode: str, seed: int) -> None:
            status.update(f"training: bias {mode}, seed {seed}")
    try:
        study = study_module.run(
            opts["data"], seeds=opts["seeds"], epochs=opts["epochs"], hidden=hidden,
            batch_size=opts["batch_size"], lr=opts["lr"], activation=opts["activation"],
            target=opts["target"], subset=opts["subset"], modes=modes,
            data_dir=opts["data_dir"], dtype=opts["dtype"], progress=progress)
    finally:
        if progress is not None:
            status.stop()
    if opts["out_plot"]:
        study_module.plot_curves(study, opts["out_plot"])
        study = dataclasses.replace(study, plot=opts["out_plot"])
    if opts["as_json"]:
        click.echo(json.dumps(study.as_dict()))
    elif opts["fmt"] == "markdown":
        click.echo(report.bias_study_markdown(study), nl=False)
    else:
        from rich.console import Console

        report.bias_study_text(study, Console(highlight=False))


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--out", "out", type=click.Path(dir_okay=False), default="network.png",
              show_default=True, help="Picture to write (.png, .svg or .pdf).")
@click.option("--data", default=None, help="2-D data set whose decision regions to draw "
              "(default: the model's training set when it is 2-D).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Folder of fashion-mnist/mnist IDX files.")
def draw(model: str, out: str, data: str | None, data_dir: str | None) -> None:
    """Draw a model: neurons coloured by bias, connections by weight, decision regions.

    Connections are wider for larger |w|, red for w < 0 and blue for w > 0; neurons are
    filled by their bias (grey: no bias; a square "1" is a bias unit). With 2 inputs and a
    2-D data set, a second panel shows the decision regions the model learned.

    \b
    Examples:
      deltaprop train --data circles --hidden 8 --out c.safetensors
      deltaprop draw c.safetensors --out c.png
      deltaprop draw model.safetensors --out net.svg
    """
    from deltaprop import datasets, io
    from deltaprop import draw as draw_module

    loaded = io.load(model)
    name = data
    if name is None and loaded.n_inputs == 2 and loaded.meta.get("data") in datasets.DATASETS:
        name = loaded.meta["data"]
    points = None
    if name is not None:
        dataset = datasets.load(name, data_dir=data_dir, seed=loaded.data_seed,
                                dtype=loaded.dtype.name)
        if dataset.n_features != 2 or loaded.n_inputs != 2:
            raise ConfigError(f"decision regions need 2-D data and a 2-input model; "
                              f"{dataset.name} has {dataset.n_features} features, the model "
                              f"takes {loaded.n_inputs} inputs")
        points = (dataset.X_test, dataset.y_test)
    result = draw_module.draw(loaded, out, data=points)
    width, height = result["size"]
    regions = " with decision regions" if result["regions"] else ""
    click.echo(f"wrote {result['path']} ({width}×{height} px){regions}")


# ------------------------------------------------------------------------ export
@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--opset", type=int, default=17, show_default=True,
              help="ONNX opset (13 or later; 20+ writes GELU as the Gelu operator).")
def export(model: str, out: str, opset: int) -> None:
    """Write MODEL as a standard ONNX graph at OUT (needs deltaprop[onnx]).

    \b
    Example:
      deltaprop export model.safetensors model.onnx
    """
    from deltaprop import onnx_export

    try:
        onnx_export.export_file(model, out, opset=opset)
    except onnx_export.OnnxUnavailableError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"wrote {out}", err=True)


# ------------------------------------------------------------------------ playground
@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to serve on; anything but loopback lets others drive it.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port (0: a free one).")
@click.option("--no-browser", is_flag=True, help="Do not open a browser.")
@click.option("--data", default="circles", show_default=True,
              help="circles, xor, blobs, spirals, moons, plane, multigauss, or a .csv file "
              "(x1, x2, label).")
@click.option("--hidden", default="4,2", show_default=True, callback=_hidden,
              help="Hidden layer sizes, comma-separated.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the first weights.")
def playground(host: str, port: int, no_browser: bool, data: str, hidden: list[int],
               seed: int) -> None:
    """Train a network live in the browser and watch it learn (Ctrl-C stops).

    \b
    Example:
      deltaprop playground --data spirals --hidden 8,8
    """
    from deltaprop._validation import open_error
    from deltaprop.playground import server

    csv = data.lower().endswith(".csv")
    content = b""
    if csv:
        try:
            content = Path(data).read_bytes()
        except OSError as e:
            raise open_error(data, e) from None
    session = server.Session({"hidden": hidden, "seed": seed,
                              **({} if csv else {"dataset": data})})
    if csv:
        session.upload_csv(content)
    sock = server.bind(host, port)
    address = server.url(host, sock)
    if not server.is_loopback(host):
        click.echo(f"warning: serving on {host}: anyone who can reach port "
                   f"{sock.getsockname()[1]} can drive this playground", err=True)
    try:  # Ctrl-C is how the server is meant to stop, from here on
        click.echo(f"serving at {address}")
        if not no_browser:
            server.open_browser(address)
        server.serve(session, sock, host)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":  # pragma: no cover
    main()
