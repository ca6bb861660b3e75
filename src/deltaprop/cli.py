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

# Errors a user can cause and fix; anything else is a bug and keeps its traceback.
_USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, TypeError, OSError)


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
    except _USER_ERRORS as e:
        _fail(str(e).splitlines()[0] if str(e) else type(e).__name__, 1)
    except ArithmeticError as e:  # training.TrainingDiverged
        _fail(str(e), 1)
    sys.exit(status if isinstance(status, int) else 0)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="deltaprop", message="deltaprop %(version)s")
def cli() -> None:
    """Train multilayer perceptrons by backpropagation, and see every number of it.

    \b
    Examples:
      deltaprop train                              # digits, the bundled default
      deltaprop train --data fashion-mnist --hidden 256,128 --epochs 10
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
        "spirals, fashion-mnist, mnist) or a .csv/.npz file or IDX folder.",
    )(f)
    return f


def _load_data(name: str, data_dir: str | None, seed: int, dtype: str, target: str | None = None):
    from deltaprop import datasets

    return datasets.load(name, data_dir=data_dir, seed=seed, dtype=dtype, target=target)


# ------------------------------------------------------------------------ train
@cli.command()
@_data_options
@click.option("--target", default=None, help="CSV column to predict (default: the last).")
@click.option("--hidden", default="128", show_default=True, callback=_hidden,
              help="Hidden layer sizes, comma-separated.")
@click.option("--activation", default="relu", show_default=True, help="Hidden activation.")
@click.option("--output", default=None,
              help="Output activation (default: softmax for classes, identity for regression).")
@click.option("--loss", default=None,
              help="Loss (default: cross_entropy for classes, mse for regression).")
@click.option("--optimizer", default="adam", show_default=True,
              help="sgd, adagrad, rmsprop, adam, adamw, nadam.")
@click.option("--lr", type=float, default=None, help="Learning rate (default: 0.001; sgd 0.05).")
@click.option("--momentum", type=float, default=None, help="Momentum (sgd, rmsprop).")
@click.option("--batch-size", type=int, default=32, show_default=True,
              help="Samples per step; 1 is online learning, 0 the full batch.")
@click.option("--epochs", type=int, default=30, show_default=True)
@click.option("--bias", type=click.Choice(["learned", "frozen", "none", "unit"]),
              default="learned", show_default=True, help="Bias mode of every layer.")
@click.option("--bias-init", type=float, default=0.0, show_default=True)
@click.option("--init", "init", default="he_normal", show_default=True, help="Weight init.")
@click.option("--weight-decay", type=float, default=0.0, show_default=True)
@click.option("--decay-bias/--no-decay-bias", default=False, show_default=True,
              help="Let weight decay act on biases too.")
@click.option("--reduction", type=click.Choice(["mean", "sum"]), default="mean",
              show_default=True, help="Batch gradient: mean or sum of per-sample gradients.")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32",
              show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--val-split", type=float, default=0.1, show_default=True,
              help="Fraction of the training data held out for validation.")
@click.option("--patience", type=int, default=None,
              help="Early stopping: epochs without validation improvement (best weights kept).")
@click.option("--out", "out", type=click.Path(dir_okay=False), default="model.safetensors",
              show_default=True, help="Where to write the model.")
@click.option("--checkpoint-every", type=int, default=None,
              help="Write a checkpoint (model + optimizer state) every N epochs.")
@click.option("--checkpoint", "checkpoint_path", type=click.Path(dir_okay=False), default=None,
              help="Checkpoint file (default: OUT with .ckpt before the suffix).")
@click.option("--resume", type=click.Path(dir_okay=False), default=None,
              help="Continue from a checkpoint; ends as the uninterrupted run would.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="Write loss/accuracy curves (train vs validation) to this PNG.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary object.")
@click.option("--quiet", "-q", is_flag=True, help="No progress and no table.")
def train(**opts: Any) -> None:
    """Train an MLP on a data set, report test metrics and save the model.

    \b
    Examples:
      deltaprop train
      deltaprop train --data fashion-mnist --hidden 256,128 --batch-size 128 --epochs 10
      deltaprop train --data my.csv --target label --hidden 32 --plot curves.png
      deltaprop train --optimizer sgd --lr 0.1 --momentum 0.9 --bias unit
      deltaprop train --checkpoint-every 5 --out m.safetensors   # then --resume m.ckpt.safetensors
    """
    from deltaprop import jobs

    ctx = click.get_current_context()
    opts["_explicit"] = {
        k for k in opts if ctx.get_parameter_source(k) == click.core.ParameterSource.COMMANDLINE
    }
    summary = jobs.train(opts)
    if opts["as_json"]:
        click.echo(json.dumps(summary))
        return
    if not opts["quiet"]:
        jobs.print_history(summary)
    test = summary["test"]
    parts = [f"test loss {test['loss']:.4f}"]
    if "accuracy" in test:
        parts.append(f"test accuracy {test['accuracy']:.4f}")
    click.echo(", ".join(parts) + f"; model saved to {summary['model']}")


# ------------------------------------------------------------------------ evaluate
@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@_data_options
@click.option("--target", default=None, help="CSV column holding the labels/targets.")
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
def predict(model: str, input: str, out: str) -> None:  # noqa: A002 - the user's word
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


if __name__ == "__main__":  # pragma: no cover
    main()
