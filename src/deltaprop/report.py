"""Rendering of explain, gradcheck and bias-study results: rich text, markdown and JSON.

The library computes (``explain.trace``, ``gradcheck.check``, ``bias_study.run``); this module
turns their results into what a person reads. Text goes to a ``rich.console.Console`` given by
the caller (the CLI's standard output); markdown and JSON come back as strings. Layers are
numbered as in the seeds (l = 1 … L) and every quantity carries its equation label from seed
000: (2), (8), (9), (10), (11), (14), (15).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: rendering needs neither module's imports
    from deltaprop.bias_study import ModeResult, Stats, Study
    from deltaprop.explain import Trace

Block = tuple[Any, ...]  # ("heading", text) | ("note", text) | ("matrix", title, rows, cols, M)


def fmt(v: float | None) -> str:
    """A number for people: 4 decimals in the usual range, scientific notation outside it."""
    if v is None:
        return "—"
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    v += 0.0  # −0.0 (a dropped neuron's δ times a negative factor) reads as 0
    if v == 0 or 1e-3 <= abs(v) < 1e4:
        return f"{v:.4f}"
    return f"{v:.3e}"


# ------------------------------------------------------------------------ explain
def _samples(m: int) -> list[str]:
    return [f"x{s + 1}" for s in range(m)]


def _cols(n: int, letter: str = "k") -> list[str]:
    return [f"{letter}={k + 1}" for k in range(n)]


def explain_blocks(trace: Trace) -> Iterator[Block]:
    """The explain trace as an ordered list of headings, notes and labelled matrices."""
    layers = trace.layers
    L = len(layers)
    m = trace.m
    rows = _samples(m)
    cfg = trace.config
    yield ("heading", "Setup")
    yield ("note", f"network {cfg['sizes']}, loss {cfg['loss']}, batch of m = {m}, "
                   f"α = {trace.lr:g}, reduction {trace.reduction} (r = {trace.r:g})")
    yield ("note", "Layers are numbered l = 1 … L as in seed 000; a^0 = x. Rows are samples.")
    yield ("matrix", "a^0 = x (inputs)", rows, _cols(trace.X.shape[1], "j"), trace.X)
    yield ("matrix", "y (targets)", rows, _cols(trace.Y.shape[1]), trace.Y)

    yield ("heading", "Forward pass")
    for e in layers:
        l = e.l
        n, n_in = e.W.shape
        yield ("matrix", f"W^{l} (row k, column j: w_kj)", _cols(n), _cols(n_in, "j"), e.W)
        if e.b is not None:
            yield ("matrix", f"b^{l} (bias {e.bias_mode})", ["b"], _cols(n), [e.b])
        elif e.unit is not None:
            yield ("matrix", f"bias unit of layer {l}: constant activation 1, weights w_k "
                   "(W's last column, playing b's part)", ["w_k"], _cols(n), [e.unit.weights])
        else:
            yield ("note", f"layer {l} has no bias (bias none): z = W a")
        yield ("matrix", f"(2) z^{l} = W^{l} a^{l - 1} + b^{l}", rows, _cols(n), e.z)
        if e.batch_norm is not None or e.dropout is not None:
            yield from _between_forward(e, rows)
        else:
            yield ("matrix", f"(2) a^{l} = σ(z^{l}), σ = {e.activation}", rows, _cols(n), e.a)
    yield ("note", f"loss C = {fmt(trace.loss)}")

    yield ("heading", "Backward pass")
    for e in reversed(layers):
        l = e.l
        n, n_in = e.W.shape
        if l == L:
            if trace.shortcut:
                title = f"(9) δ^{L} = a^{L} − y (canonical {e.activation} + {cfg['loss']})"
            else:
                yield ("matrix", f"∂C/∂a^{L} (per sample)", rows, _cols(n), e.dC_da)
                if e.sigma_prime is not None:
                    yield ("matrix", f"σ'(z^{L})", rows, _cols(n), e.sigma_prime)
                title = f"(9) δ^{L} = ∂C/∂a^{L} ⊙ σ'(z^{L})"
        elif e.batch_norm is not None or e.dropout is not None:
            yield from _between_backward(e, rows)
            title = (f"(BN) δ^{l} = ∂C/∂z^{l}, through the batch's μ and σ²"
                     if e.batch_norm is not None
                     else f"(8) δ^{l} = (W^{l + 1})ᵀ δ^{l + 1} ⊙ m/(1 − p) ⊙ σ'(z^{l})")
        else:
            yield ("matrix", f"σ'(z^{l})", rows, _cols(n), e.sigma_prime)
            title = f"(8) δ^{l} = (W^{l + 1})ᵀ δ^{l + 1} ⊙ σ'(z^{l})"
        yield ("matrix", f"{title} — per-sample rows, then their sum and mean over samples",
               [*rows, "Σ samples", "mean"], _cols(n), [*e.delta, e.delta_sum, e.delta_mean])
        r = "1/m" if trace.reduction == "mean" else "1"
        yield ("matrix", f"(10) ∂C/∂w_kj^{l} = r Σ_samples δ_k^{l} a_j^{l - 1}  (r = {r})",
               _cols(n), _cols(n_in, "j"), e.dW)
        if e.db is not None:
            note = "" if e.bias_mode == "learned" else " — computed, NOT applied (bias frozen)"
            yield ("matrix", f"(14) ∂C/∂b_k^{l} = r Σ_samples δ_k^{l}: the neuron's own δ{note}",
                   ["∂C/∂b"], _cols(n), [e.db])
        elif e.unit is not None:
            yield ("matrix", f"(10) for the bias unit, a_j = 1: ∂C/∂w_k = r Σ_samples δ_k^{l} "
                   "· 1 — eq. (14) again", ["∂C/∂w_k"], _cols(n), [e.unit.gradient])

    yield ("heading", f"Update (plain SGD, α = {trace.lr:g})")
    for e in layers:
        l = e.l
        n, n_in = e.W.shape
        yield ("matrix", f"(11) w_kj^{l} ← w_kj^{l} − α ∂C/∂w_kj^{l}", _cols(n),
               _cols(n_in, "j"), e.W_new)
        if e.bias_mode == "learned":
            yield ("matrix", f"(15) b_k^{l} ← b_k^{l} − α ∂C/∂b_k^{l}", ["b"], _cols(n),
                   [e.b_new])
        elif e.bias_mode == "frozen":
            yield ("matrix", f"b^{l} unchanged (frozen): the gradient above was not applied",
                   ["b"], _cols(n), [e.b_new])
        elif e.unit is not None:
            yield ("matrix", "(11) on the bias unit's weights = (15): w_k ← w_k − α ∂C/∂w_k",
                   ["w_k"], _cols(n), [e.unit.new_weights])
        if e.batch_norm is not None:
            bn = e.batch_norm
            yield ("matrix", f"γ^{l} ← γ^{l} − α ∂C/∂γ^{l},  β^{l} ← β^{l} − α ∂C/∂β^{l}",
                   ["γ", "β"], _cols(n), [bn.gamma_new, bn.beta_new])
    yield ("note", f"loss on the same batch after the step: {fmt(trace.loss_after)} "
                   f"(before: {fmt(trace.loss)})")


def _between_forward(e: Any, rows: list[str]) -> Iterator[Block]:
    """Batch norm's and dropout's part of a layer's forward pass (after z)."""
    l, n = e.l, e.W.shape[0]
    pre = f"z^{l}"
    if e.batch_norm is not None:
        bn = e.batch_norm
        yield ("matrix", f"(BN) the batch's μ^{l} = (1/m) Σ_samples z^{l} and σ²^{l} = "
               f"(1/m) Σ_samples (z^{l} − μ^{l})²", ["μ", "σ²"], _cols(n), [bn.mu, bn.var])
        yield ("matrix", f"(BN) ẑ^{l} = (z^{l} − μ^{l}) / √(σ²^{l} + ε), ε = {bn.eps:g}",
               rows, _cols(n), bn.z_hat)
        yield ("matrix", f"(BN) γ^{l} and β^{l} (learned)", ["γ", "β"], _cols(n),
               [bn.gamma, bn.beta])
        yield ("matrix", f"(BN) z̃^{l} = γ^{l} ẑ^{l} + β^{l}", rows, _cols(n), bn.z_tilde)
        pre = f"z̃^{l}"
    if e.dropout is not None:
        d = e.dropout
        yield ("matrix", f"(2) σ({pre}), σ = {e.activation}", rows, _cols(n), d.sigma)
        yield ("matrix", f"dropout mask m^{l}: 1 = kept (probability 1 − p), p = {d.p:g}",
               rows, _cols(n), d.mask)
        yield ("matrix", f"(2) a^{l} = σ({pre}) ⊙ m^{l} / (1 − p)", rows, _cols(n), e.a)
    else:
        yield ("matrix", f"(2) a^{l} = σ({pre}), σ = {e.activation}", rows, _cols(n), e.a)


def _between_backward(e: Any, rows: list[str]) -> Iterator[Block]:
    """Eq. (8) into a layer with dropout and/or batch norm, factor by factor."""
    l, n = e.l, e.W.shape[0]
    pre = f"z̃^{l}" if e.batch_norm is not None else f"z^{l}"
    if e.dropout is not None:
        d = e.dropout
        yield ("matrix", f"(8) ∂C/∂a^{l} = (W^{l + 1})ᵀ δ^{l + 1}", rows, _cols(n), d.dC_da)
        yield ("matrix", f"(8) ⊙ m^{l} / (1 − p): a dropped neuron gets nothing back", rows,
               _cols(n), d.dC_da_masked)
    else:
        yield ("matrix", f"(8) ∂C/∂a^{l} = (W^{l + 1})ᵀ δ^{l + 1}", rows, _cols(n),
               e.batch_norm.dC_da)
    yield ("matrix", f"σ'({pre})", rows, _cols(n), e.sigma_prime)
    if e.batch_norm is not None:
        bn = e.batch_norm
        yield ("matrix", f"∂C/∂z̃^{l} = ∂C/∂a^{l} ⊙ σ'({pre})", rows, _cols(n),
               bn.dC_dz_tilde)
        yield ("matrix", f"∂C/∂γ^{l} = r Σ_samples ∂C/∂z̃ ẑ,  ∂C/∂β^{l} = r Σ_samples ∂C/∂z̃",
               ["∂C/∂γ", "∂C/∂β"], _cols(n), [bn.dgamma, bn.dbeta])
        yield ("note", f"(BN) δ^{l} = γ/√(σ² + ε) ⊙ (∂C/∂z̃ − mean_samples ∂C/∂z̃ − ẑ ⊙ "
                       "mean_samples(∂C/∂z̃ ẑ)): each sample's δ depends on the whole batch, "
                       "and the δ rows sum to 0 — a bias before batch norm would get "
                       "∂C/∂b = r Σ_samples δ = 0")


def _markdown_table(rows: Sequence[str], cols: Sequence[str], M: Sequence[Sequence[float]]) -> str:
    lines = ["| | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for label, row in zip(rows, M, strict=True):
        lines.append(f"| {label} | " + " | ".join(fmt(v) for v in row) + " |")
    return "\n".join(lines)


def explain_markdown(trace: Trace) -> str:
    """The explain trace as a markdown document."""
    parts = []
    for block in explain_blocks(trace):
        if block[0] == "heading":
            parts.append(f"### {block[1]}")
        elif block[0] == "note":
            parts.append(block[1])
        else:
            _, title, rows, cols, M = block
            parts.append(f"**{title}**\n\n{_markdown_table(rows, cols, M)}")
    return "\n\n".join(parts) + "\n"


def explain_text(trace: Trace, console: Any) -> None:
    """Print the explain trace with rich: one small table per quantity."""
    from rich.table import Table

    for block in explain_blocks(trace):
        if block[0] == "heading":
            console.rule(f"[bold]{block[1]}")
        elif block[0] == "note":
            console.print(block[1])
        else:
            _, title, rows, cols, M = block
            console.print(f"[bold]{title}[/]")
            table = Table(box=None, pad_edge=False)
            table.add_column("")
            for c in cols:
                table.add_column(c, justify="right")
            for label, row in zip(rows, M, strict=True):
                table.add_row(label, *(fmt(v) for v in row))
            console.print(table)
            console.print()


def explain_json(trace: Trace) -> str:
    """Every number of the trace as one JSON object (:meth:`Trace.as_dict`)."""
    return json.dumps(trace.as_dict())


# ------------------------------------------------------------------------ gradcheck
def gradcheck_dict(report: Any) -> dict[str, Any]:
    """A :class:`deltaprop.gradcheck.GradcheckReport` as JSON-friendly data."""
    return {
        "passed": report.passed,
        "tol": report.tol,
        "eps": report.eps,
        "scale": report.scale,
        "reduction": report.reduction,
        "bias_rule": report.bias_rule,
        "max_rel": report.max_rel,
        "rows": [
            {"l": l, "param": name, "max_abs": a, "max_rel": r, "ok": ok}
            for l, name, a, r, ok in report.rows()
        ],
    }


def gradcheck_verdict(report: Any) -> str:
    """One line: PASS/FAIL, the worst relative error and the tolerance."""
    rule = ("the neuron's own δ, eq. (14)" if report.bias_rule == "delta"
            else "seed 002's mistaken layer sum of δs")
    if report.passed:
        return (f"PASS: backprop matches central differences; max relative error "
                f"{report.max_rel:.2e} ≤ tol {report.tol:g} (eps {report.eps:g}, float64, "
                f"bias gradient = {rule})")
    bad = [f"{name}^{l}" for l, name, _, _, ok in report.rows() if not ok]
    return (f"FAIL: {', '.join(bad)} disagree with central differences; max relative error "
            f"{report.max_rel:.2e} > tol {report.tol:g} (eps {report.eps:g}, float64, "
            f"bias gradient = {rule})")


def gradcheck_markdown(report: Any) -> str:
    lines = ["| layer l | param | max abs err | max rel err | ok |", "|---|---|---|---|---|"]
    for l, name, a, r, ok in report.rows():
        lines.append(f"| {l} | {name} | {a:.3e} | {r:.3e} | {'yes' if ok else 'NO'} |")
    return "\n".join(lines) + "\n\n" + gradcheck_verdict(report) + "\n"


def gradcheck_text(report: Any, console: Any) -> None:
    from rich.table import Table

    table = Table(title="gradient check: backprop vs central differences (float64)",
                  title_justify="left")
    for name in ("layer l", "param", "max abs err", "max rel err", "ok"):
        table.add_column(name, justify="right")
    for l, name, a, r, ok in report.rows():
        table.add_row(str(l), name, f"{a:.3e}", f"{r:.3e}", "yes" if ok else "[red]NO[/]")
    console.print(table)
    console.print("relative error = |analytic − numerical| / largest gradient entry of the "
                  f"network ({report.scale:.3e})")
    style = "bold green" if report.passed else "bold red"
    console.print(f"[{style}]{gradcheck_verdict(report)}[/]")


# ------------------------------------------------------------------------ bias study
def _pm(stats: Stats, digits: int = 4) -> str:
    return f"{stats.mean:.{digits}f} ± {stats.std:.{digits}f}"


def _epochs_cell(row: ModeResult) -> str:
    epochs = row.epochs_to_target
    if not epochs.reached:
        return f"never (0/{epochs.seeds})"
    return f"{epochs.mean:.1f} ({epochs.reached}/{epochs.seeds})"


BIAS_COLUMNS = ("mode", "train loss", "train acc", "val loss", "val acc", "epochs to target")


def bias_rows(study: Study) -> list[list[str]]:
    """The study's table as strings, one row per bias mode."""
    out = []
    for row in study.rows:
        out.append([row.mode, _pm(row.train_loss), _pm(row.train_accuracy),
                    _pm(row.val_loss), _pm(row.val_accuracy), _epochs_cell(row)])
    return out


def memory_line(study: Study) -> str:
    mem = study.memory
    return (f"memory ({mem.dtype}): biases {mem.bias_count:,} values = "
            f"{mem.bias_bytes:,} bytes ({mem.bias_fraction:.2%} of the parameters); "
            f"weights {mem.weight_count:,} values = {mem.weight_bytes:,} bytes")


def study_header(study: Study) -> list[str]:
    s = study.settings
    lines = [
        f"bias study on {study.data}: sizes {list(s.sizes)}, {s.activation} hidden, "
        f"{s.optimizer} lr {s.lr:g}, batch {s.batch_size}, {s.epochs} epochs, "
        f"seeds {s.seeds} (mean ± std), target val accuracy {s.target:g}",
        f"data: {s.n_train} training / {s.n_val} validation samples"
        + (f" ({s.subset_note})" if s.subset_note else ""),
    ]
    return lines


def bias_study_markdown(study: Study) -> str:
    lines = [*study_header(study), ""]
    lines.append("| " + " | ".join(BIAS_COLUMNS) + " |")
    lines.append("|---" * len(BIAS_COLUMNS) + "|")
    for cells in bias_rows(study):
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", memory_line(study)]
    if study.unit_vs_learned is not None:
        lines.append(f"learned vs unit: largest difference of any final parameter "
                     f"{study.unit_vs_learned:.1e}")
    return "\n".join(lines) + "\n"


def bias_study_text(study: Study, console: Any) -> None:
    from rich.table import Table

    header = study_header(study)
    table = Table(title=header[0], title_justify="left")
    for name in BIAS_COLUMNS:
        table.add_column(name, justify="left" if name == "mode" else "right")
    for cells in bias_rows(study):
        table.add_row(*cells)
    console.print(table)
    for line in header[1:]:
        console.print(line)
    console.print(memory_line(study))
    if study.unit_vs_learned is not None:
        console.print(f"learned vs unit: largest difference of any final parameter "
                      f"{study.unit_vs_learned:.1e}")
    if study.plot:
        console.print(f"learning curves written to {study.plot}")
