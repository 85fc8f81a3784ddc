"""Train a SUGAR model across processes with each backend's own engine,
and check it against single-process training on the same global batches.

    python examples/multi_worker.py --backend torch --workers 2
    python examples/multi_worker.py --backend jax --workers 2
    python examples/multi_worker.py --backend tensorflow --workers 2

The command starts `--workers` processes on this machine (localhost only),
each training on its share of every global batch:

- torch: `torch.nn.parallel.DistributedDataParallel` around the Keras
  model (a `torch.nn.Module`) in a small torch loop, `gloo` backend.
- jax: `jax.distributed.initialize` (one CPU device per process) and
  `keras.distribution.DataParallel` over all processes' devices; each
  process feeds its own rows of the global batch to `model.fit`.
- tensorflow: `tf.distribute.MultiWorkerMirroredStrategy` from `TF_CONFIG`
  (one worker per process), a custom step run by the strategy.

Then it trains the same model from the same initial weights in this
process on the whole global batches, and ends with one line:
`matches single-process training: True (max weight difference X)`.
On several machines, start one process per machine (or per device) with
the same code and tell each where the others are:

- torch: `torch.distributed.init_process_group("gloo" or "nccl",
  init_method="tcp://HOST0:PORT", rank=RANK, world_size=N)` (or launch
  with `torchrun --nnodes N --node-rank RANK --master-addr HOST0
  script.py`), then `DistributedDataParallel(model)` and your loop; each
  process trains on its rows of every global batch.
- jax: `jax.distributed.initialize("HOST0:PORT", num_processes=N,
  process_id=RANK)` first, then
  `keras.distribution.DataParallel(devices=jax.devices())` (all
  processes' devices) and `fit`; with inputs already split per process,
  set `distribution.auto_shard_dataset = False`, otherwise pass a
  `tf.data.Dataset` and Keras shards it.
- tensorflow: `TF_CONFIG='{"cluster": {"worker": ["HOST0:PORT",
  "HOST1:PORT"]}, "task": {"type": "worker", "index": RANK}}'`, then
  `tf.distribute.MultiWorkerMirroredStrategy()`; build the model and
  optimizer in its scope and train with `strategy.run`, or `fit` on a
  `tf.data.Dataset`.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile

import numpy as np

GLOBAL_BATCH, STEPS, LR = 16, 6, 0.05
TOLERANCE = 1e-5


def data():
    """The same global batches in every process: `STEPS` batches."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(STEPS * GLOBAL_BATCH, 8)).astype("float32")
    y = (np.sin(x[:, :1]) + 0.5 * x[:, 1:2] ** 2).astype("float32")
    return x, y


def build_model():
    import keras

    from keras_sugar import SugarReLU

    keras.utils.set_random_seed(0)  # The same initial weights everywhere.
    return keras.Sequential([
        keras.Input((8,)),
        keras.layers.Dense(16, activation=SugarReLU("bsilu")),
        keras.layers.Dense(16, activation=SugarReLU("nelu", alpha=0.05)),
        keras.layers.Dense(1),
    ])


def rows(step, rank=0, workers=1):
    """The rows of global batch `step` that process `rank` trains on."""
    start = step * GLOBAL_BATCH
    share = GLOBAL_BATCH // workers
    return slice(start + rank * share, start + (rank + 1) * share)


def all_rows(rank, workers):
    """Indices of every row process `rank` trains on, step after step."""
    return np.concatenate([np.arange(STEPS * GLOBAL_BATCH)[rows(
        step, rank, workers)] for step in range(STEPS)])


# --- torch: DistributedDataParallel ---------------------------------------

def torch_worker(rank, workers, port):
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}",
                            rank=rank, world_size=workers)
    model = build_model()
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    weights = _torch_train(ddp, model, rank, workers)
    dist.destroy_process_group()
    return weights


def _torch_train(module, model, rank=0, workers=1):
    import torch

    x, y = data()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    for step in range(STEPS):
        part = rows(step, rank, workers)
        prediction = module(torch.from_numpy(x[part]))
        loss = torch.mean((prediction - torch.from_numpy(y[part])) ** 2)
        optimizer.zero_grad()
        loss.backward()  # DDP averages the gradients over the processes.
        optimizer.step()
    return [np.array(w) for w in model.get_weights()]


def torch_single():
    model = build_model()
    return _torch_train(model, model)


# --- jax: jax.distributed + keras.distribution.DataParallel ---------------

def jax_worker(rank, workers, port):
    import jax

    jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=workers,
                               process_id=rank)
    import keras

    distribution = keras.distribution.DataParallel(devices=jax.devices())
    # Each process already holds only its rows of every global batch.
    distribution.auto_shard_dataset = False
    keras.distribution.set_distribution(distribution)
    model = build_model()
    x, y = data()
    mine = all_rows(rank, workers)
    _keras_fit(model, x[mine], y[mine], GLOBAL_BATCH // workers)
    weights = [np.array(w) for w in model.get_weights()]
    jax.distributed.shutdown()
    return weights


def _keras_fit(model, x, y, batch_size):
    import keras

    model.compile(optimizer=keras.optimizers.SGD(LR), loss="mse")
    model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False,
              verbose=0)


def keras_single():
    model = build_model()
    x, y = data()
    _keras_fit(model, x, y, GLOBAL_BATCH)
    return [np.array(w) for w in model.get_weights()]


# --- tensorflow: MultiWorkerMirroredStrategy ------------------------------

def tensorflow_worker(rank, workers, port):
    import keras
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    with strategy.scope():
        model = build_model()
        optimizer = keras.optimizers.SGD(LR)
        optimizer.build(model.trainable_variables)
    x, y = data()

    def batches(context):
        # Each worker reads its own rows of every global batch.
        mine = all_rows(context.input_pipeline_id, workers)
        return tf.data.Dataset.from_tensor_slices(
            (x[mine], y[mine])).batch(GLOBAL_BATCH // workers)

    dataset = strategy.distribute_datasets_from_function(batches)

    @tf.function
    def step(inputs):
        def replica_step(batch_x, batch_y):
            with tf.GradientTape() as tape:
                error = tf.square(model(batch_x, training=True) - batch_y)
                # Each replica's share of the global mean.
                loss = tf.reduce_sum(error) / GLOBAL_BATCH
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))

        strategy.run(replica_step, args=inputs)

    for inputs in dataset:
        step(inputs)
    return [np.array(w) for w in model.get_weights()]


WORKERS = {"torch": torch_worker, "jax": jax_worker,
           "tensorflow": tensorflow_worker}
SINGLE = {"torch": torch_single, "jax": keras_single,
          "tensorflow": keras_single}


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _worker_env(backend, rank, workers, ports):
    env = dict(os.environ, KERAS_BACKEND=backend)
    if backend == "tensorflow":
        env["TF_CONFIG"] = json.dumps({
            "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
            "task": {"type": "worker", "index": rank}})
    if backend == "jax":
        # One CPU device per process; collectives across processes on CPU.
        env["JAX_PLATFORMS"] = "cpu"
    return env


def launch(backend, workers):
    """Runs the workers on this machine; returns rank 0's final weights."""
    if workers < 1 or GLOBAL_BATCH % workers:
        raise SystemExit(f"--workers must divide the global batch "
                         f"({GLOBAL_BATCH}). Received: --workers {workers}")
    ports = _free_ports(max(workers, 1))
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "weights.npz")
        procs = [subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--backend", backend,
             "--workers", str(workers), "--rank", str(rank), "--port",
             str(ports[0]), "--out", out],
            env=_worker_env(backend, rank, workers, ports))
            for rank in range(workers)]
        codes = [proc.wait(timeout=600) for proc in procs]
        if any(codes):
            raise SystemExit(f"A worker failed (exit codes {codes}).")
        with np.load(out) as saved:
            return [saved[f"w{i}"] for i in range(len(saved.files))]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=sorted(WORKERS), required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rank", type=int, default=None,
                        help=argparse.SUPPRESS)  # Set for the workers.
    parser.add_argument("--port", type=int, default=None,
                        help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ["KERAS_BACKEND"] = args.backend
    if args.rank is not None:  # A worker.
        weights = WORKERS[args.backend](args.rank, args.workers, args.port)
        if args.rank == 0:
            np.savez(args.out, **{f"w{i}": w for i, w in enumerate(weights)})
        return 0
    distributed = launch(args.backend, args.workers)
    single = SINGLE[args.backend]()
    difference = max(float(np.max(np.abs(a - b)))
                     for a, b in zip(distributed, single))
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(
        single, [np.array(w) for w in build_model().get_weights()]))
    print(f"{args.workers} {args.backend} workers, {STEPS} steps of global "
          f"batch {GLOBAL_BATCH} (weights moved by up to {moved:.3g})")
    matches = difference <= TOLERANCE
    print(f"matches single-process training: {matches} (max weight "
          f"difference {difference:.3g})")
    return 0 if matches else 1


if __name__ == "__main__":
    sys.exit(main())
