"""Try a Fashion-MNIST recipe on a validation split: validation accuracy per epoch.

How the recipe of ``bench_fashion_mlp.py`` was chosen (docs/fashion-mnist.md)::

    PYTHONPATH=src python benchmarks/fashion_recipes.py \\
        '{"hidden": [1024, 1024], "batch_norm": true, "dropout": 0.4, "epochs": 20}'

The data, split and scaling are the command's (``deltaprop train --data fashion-mnist
--val-split 0.1 --seed 0``): 54000 training images, 6000 for validation, pixels divided by
255. The recipe is a JSON object: ``hidden``, ``batch_norm``, ``dropout``, ``optimizer``
(adam), ``lr`` (1e-3), ``schedule`` (cosine or constant), ``batch_size`` (128), ``epochs``,
``seed`` (0). One line per epoch: training loss, validation accuracy, seconds so far. The
test set is not touched: choosing a recipe by its test accuracy would make that figure
optimistic.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import numpy as np

import deltaprop as dp
from deltaprop import datasets, optim, schedules, training

DEFAULTS: dict[str, Any] = {"hidden": [512, 512], "batch_norm": False, "dropout": 0.0,
                            "optimizer": "adam", "lr": 1e-3, "schedule": "cosine",
                            "batch_size": 128, "epochs": 20, "seed": 0}


def main() -> None:
    recipe = DEFAULTS | json.loads(sys.argv[1])
    seed = recipe["seed"]
    data = datasets.load("fashion-mnist", seed=seed, dtype="float32")
    rng = np.random.default_rng([seed, 1])  # the command's validation split
    X, y, X_val, y_val = datasets.train_val_split(data.X_train, data.y_train, 0.1, rng)
    scaler = datasets.default_scaler("fashion-mnist").fit(X)
    X, X_val = scaler.transform(X, "float32"), scaler.transform(X_val, "float32")
    net = dp.Network([784, *recipe["hidden"], 10], seed=seed, dropout=recipe["dropout"],
                     batch_norm=recipe["batch_norm"])
    opt = optim.get(recipe["optimizer"])(lr=recipe["lr"])
    schedule = (schedules.CosineAnnealingLR(T_max=recipe["epochs"])
                if recipe["schedule"] == "cosine" else None)
    started = time.perf_counter()

    def line(epoch: int, logs: dict[str, float]) -> None:
        print(f"{json.dumps(recipe)} epoch {epoch + 1}: loss {logs['loss']:.4f} val_accuracy "
              f"{logs['val_accuracy']:.4f} {time.perf_counter() - started:.0f} s", flush=True)

    net.fit(X, y, epochs=recipe["epochs"], batch_size=recipe["batch_size"], optimizer=opt,
            schedule=schedule, validation_data=(X_val, y_val), verbose=0,
            callbacks=[training.LambdaCallback(on_epoch_end=line)])


if __name__ == "__main__":
    main()
