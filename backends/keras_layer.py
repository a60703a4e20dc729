"""Probes of the whole keras.layers.Conv3D for the `layer` check (conformance.layer_check).

Each probe builds layers through `make_layer` (KerasBackend.new_layer: the one place a layer is
made, which the layer mutants override), does what a user does (initialise, regularise, step an
optimizer, fit, save) and returns what it observed as NumPy arrays and plain values; the judging is
conformance's. Probes run in the backend's worker, where KERAS_BACKEND is fixed; `data_format` runs
in a child process of its own, whose Keras reads keras.json from a temporary KERAS_HOME.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

CHILD_TIMEOUT_S = 300.0


def _numpy(keras, value) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(value))


MODULES = {"initializer": "initializers", "regularizer": "regularizers", "constraint": "constraints"}


def _objects(keras, args: dict) -> dict:
    """Layer arguments with each *_initializer, *_regularizer and *_constraint given as a config
    dict ({"class_name": ..., "config": ...}) made into the Keras object."""
    def made(key: str, value):
        kind = key.rsplit("_", 1)[-1]
        if kind in MODULES and isinstance(value, dict):
            return getattr(keras, MODULES[kind]).get(value)
        return value

    return {key: made(key, value) for key, value in args.items()}


def _with_weights(keras, make_layer: Callable, p: dict):
    """A layer built for p["x"] holding p["kernel"] (and p["bias"] when given)."""
    layer = make_layer(filters=p["kernel"].shape[-1], kernel_size=p["kernel"].shape[:3],
                       use_bias=p.get("bias") is not None, **_objects(keras, p.get("args", {})))
    layer.build(p["x"].shape)
    if tuple(layer.kernel.shape) != p["kernel"].shape:
        raise ValueError(f"the layer built a kernel of shape {tuple(layer.kernel.shape)} for an input "
                         f"of shape {p['x'].shape} (data_format {layer.data_format}), not the given "
                         f"{p['kernel'].shape}")
    layer.kernel.assign(p["kernel"])
    if p.get("bias") is not None:
        layer.bias.assign(p["bias"])
    return layer


def initializer(keras, make_layer: Callable, p: dict) -> dict:
    """The kernel and bias a layer draws; twice from the same seed (the global one when the
    initializer is the default, else the initializer's own)."""
    def draw():
        keras.utils.set_random_seed(p["seed"])
        layer = make_layer(filters=p["filters"], kernel_size=p["kernel_size"], **_objects(keras, p["args"]))
        layer.build(p["input_shape"])
        return _numpy(keras, layer.kernel), _numpy(keras, layer.bias) if layer.use_bias else None

    (kernel, bias), (again, _) = draw(), draw()
    return dict(kernel=kernel, bias=bias, kernel_again=again)


def regularizer(keras, make_layer: Callable, p: dict) -> dict:
    """layer.losses after one call, with the output it was computed from."""
    layer = _with_weights(keras, make_layer, p)
    y = layer(keras.ops.convert_to_tensor(p["x"]))
    return dict(y=_numpy(keras, y), losses=[float(_numpy(keras, loss)) for loss in layer.losses])


def constraint(keras, make_layer: Callable, p: dict) -> dict:
    """The kernel and bias after one SGD step with the given gradients."""
    layer = _with_weights(keras, make_layer, p)
    optimizer = keras.optimizers.SGD(learning_rate=p["learning_rate"])
    grads = [keras.ops.convert_to_tensor(p["kernel_grad"]), keras.ops.convert_to_tensor(p["bias_grad"])]
    optimizer.apply(grads, [layer.kernel, layer.bias])
    return dict(kernel=_numpy(keras, layer.kernel), bias=_numpy(keras, layer.bias))


def fit(keras, make_layer: Callable, p: dict) -> dict:
    """The kernel and bias after model.fit on one batch: mean squared error, plain SGD."""
    layer = _with_weights(keras, make_layer, p)
    model = keras.Sequential([keras.Input(shape=p["x"].shape[1:]), layer])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=p["learning_rate"]),
                  loss="mean_squared_error")
    model.fit(p["x"], p["target"], batch_size=len(p["x"]), epochs=1, shuffle=False, verbose=0)
    return dict(kernel=_numpy(keras, layer.kernel),
                bias=_numpy(keras, layer.bias) if layer.use_bias else None)


def output(keras, make_layer: Callable, p: dict) -> dict:
    """The layer's output for p["x"], the data_format it resolved and its weights' shapes."""
    layer = _with_weights(keras, make_layer, p)
    y = layer(keras.ops.convert_to_tensor(p["x"]))
    return dict(y=_numpy(keras, y), data_format=layer.data_format,
                weight_shapes=[tuple(w.shape) for w in layer.weights])


def data_format(keras_home_probe: Callable[[dict], dict], p: dict) -> dict:
    """`output` with data_format left unset, in a child process whose keras.json says
    p["image_data_format"]."""
    with tempfile.TemporaryDirectory() as home:
        Path(home, "keras.json").write_text(json.dumps(dict(image_data_format=p["image_data_format"])))
        return keras_home_probe(dict(p, keras_home=home))


def run_child(backend_target: str, keras_backend: str, p: dict) -> dict:
    """The `output` probe of backend `backend_target` (module:attr) in a fresh interpreter with
    KERAS_HOME=p["keras_home"]."""
    env = dict(os.environ, KERAS_HOME=p["keras_home"], KERAS_BACKEND=keras_backend)
    code = ("import pickle, sys; from backends.registry import get_backend; "
            "p = pickle.load(sys.stdin.buffer); "
            f"r = get_backend({backend_target!r}).layer_probe('output', p); "
            "sys.stdout.flush(); sys.stdout.buffer.write(b'\\0RESULT' + pickle.dumps(r))")
    done = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(p), capture_output=True,
                          env=env, timeout=CHILD_TIMEOUT_S, cwd=str(Path(__file__).parents[1]))
    if done.returncode != 0 or b"\0RESULT" not in done.stdout:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        raise RuntimeError(f"the child process failed (exit {done.returncode}): {lines[-1] if lines else ''}")
    return pickle.loads(done.stdout.split(b"\0RESULT", 1)[1])


def serialization(keras, make_layer: Callable, p: dict) -> dict:
    """The output of the layer, of Conv3D.from_config(get_config()) with the same weights, and of
    a model holding it after a .keras save and load."""
    layer = _with_weights(keras, make_layer, p)
    x = keras.ops.convert_to_tensor(p["x"])
    twin = type(layer).from_config(layer.get_config())
    twin.build(p["x"].shape)
    twin.set_weights(layer.get_weights())
    model = keras.Sequential([keras.Input(shape=p["x"].shape[1:]), layer])
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
    return dict(y=_numpy(keras, layer(x)), from_config=_numpy(keras, twin(x)),
                loaded=_numpy(keras, loaded(x)))


def shapes(keras, make_layer: Callable, p: dict) -> dict:
    """compute_output_shape for p["input_shape"], and the output shape of a symbolic input with
    every spatial size and the batch unknown."""
    layer = make_layer(**p["args"])
    known = layer.compute_output_shape(p["input_shape"])
    channels_last = layer.data_format == "channels_last"
    c = p["input_shape"][-1] if channels_last else p["input_shape"][1]
    symbolic = keras.Input(shape=(None, None, None, c) if channels_last else (c, None, None, None))
    return dict(known=tuple(known), symbolic=tuple(layer(symbolic).shape))


def arguments(keras, make_layer: Callable, p: dict) -> dict:
    """What building and calling a layer with p["args"] raised ("" when nothing)."""
    try:
        layer = make_layer(**p["args"])
        layer(keras.ops.convert_to_tensor(p["x"]))
    except Exception as exc:  # noqa: BLE001 - the judge compares the type with the documented one
        return dict(raised=type(exc).__name__, message=str(exc)[:500])
    return dict(raised="", message="")


PROBES = dict(initializer=initializer, regularizer=regularizer, constraint=constraint, fit=fit,
              output=output, serialization=serialization, shapes=shapes, arguments=arguments)
