"""Training: learning, distribution, bad flags (kills: test_fault_injection)."""

import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest

from jgr_p2o_tf import progress
from jgr_p2o_tf import train_config
from jgr_p2o_tf import trainer as trainer_lib

# A small network keeps these tests within a CPU budget; the full network's
# step is the same code.
SMALL = dict(num_stacks=1, num_features=32, jit_compile=False)


def _config(records, model_dir, **overrides):
  values = dict(train_dir=os.path.join(records, "train"),
                model_dir=str(model_dir), epochs=4, progress_bar=False,
                **SMALL)
  values.update(overrides)
  return train_config.TrainConfig(**values)


def _train_command(records, model_dir, *extra):
  return [sys.executable, "-m", "jgr_p2o_tf.train", "--dataset=synthetic",
          f"--data_dir={records}", f"--model_dir={model_dir}",
          "--num_stacks=1", "--num_features=32", "--nojit_compile",
          "--noprogress_bar", *extra]


def test_loss_falls_and_validation_error_improves(synthetic_records, tmp_path,
                                                  capfd):
  # A quarter of the training records (their last shard) held out;
  # --jit_compile left to its default, which the trainer resolves.
  config = _config(synthetic_records, tmp_path, epochs=8, learning_rate=2e-3,
                   augment=False, validation_fraction=0.25,
                   progress_bar=True, log_every_steps=12, jit_compile=None)
  log = []
  started = time.monotonic()
  history = trainer_lib.train(config, log=log.append)
  seconds = time.monotonic() - started
  _check_log(log, capfd.readouterr().err.splitlines(), config, seconds)
  _check_tensorboard(tmp_path)
  losses = [h["train_loss"] for h in history]
  errors = [h["validation_mean_error_mm"] for h in history]
  print("losses", losses, "validation errors (mm)", errors)
  # 192 training frames, 6 steps of 32 an epoch.
  assert [h["step"] for h in history] == [6 * (e + 1) for e in range(8)]
  assert losses[-1] < 0.7 * losses[0]
  assert errors[-1] < 0.8 * errors[0]
  saved = json.load(open(tmp_path / "config.json"))
  assert saved["jit_compile"] is trainer_lib.resolve_jit_compile(None)
  best = json.load(open(tmp_path / "best.json"))
  assert best["mean_error_mm"] == pytest.approx(min(errors))
  assert best["validation"]["shards"] == ["train-00003-of-00004.tfrecord"]
  from jgr_p2o_tf import run_dir  # pylint: disable=g-import-not-at-top
  assert run_dir.resolve_model_path(tmp_path) == str(tmp_path / "best.keras")
  # Every file of the run is readable as the umask allows, none 0600.
  umask = os.umask(0)
  os.umask(umask)
  for name in ("config.json", "history.json", "best.json", "best.keras",
               "last.keras"):
    assert os.stat(tmp_path / name).st_mode & 0o777 == 0o666 & ~umask, name


def _check_log(log, bar_lines, config, seconds):
  """A log file of a few lines per epoch: summaries, bars' lines, epochs."""
  # Off a terminal, each epoch's bar writes a line per LINE_INTERVAL_S and
  # one at its end.
  most = config.epochs * (1 + seconds // progress.LINE_INTERVAL_S)
  assert config.epochs <= len(bar_lines) <= most, bar_lines
  assert bar_lines[-1].startswith(f"epoch {config.epochs}/{config.epochs}: "
                                  "6/6 step (100%)"), bar_lines
  # The start summary (model, data, schedule, output), a line per epoch and
  # the end summary (time and loss, validation error, the run's model).
  assert len(log) == 4 + config.epochs + 3, log
  model, data, schedule, output = log[:4]
  assert "1 stacks of 32 features" in model and "parameters" in model
  assert "GFLOPs per frame" in model
  assert "192 training crops" in data and "64 crops" in data
  assert "8 epochs of 6 steps of batch 32 (48 steps)" in schedule
  assert schedule.endswith(
      f"train step {'with' if config.jit_compile else 'without'} XLA")
  assert output.startswith(f"output: {config.model_dir}")
  assert re.fullmatch(r"epoch 8: loss \d\.\d{4}, validation mean error "
                      r"\d+\.\d\d mm", log[4 + 7])
  assert log[-3].startswith("done: epoch 8, step 48;")
  assert re.search(r"at epoch \d \(best.keras\)$", log[-2])
  assert log[-1] == f"the run's model: {config.model_dir}/best.keras"
  # Nothing of a raw dict's float noise.
  assert not re.search(r"\d\.\d{6}", "\n".join(log + bar_lines))


def _tensorboard_scalars(directory):
  """{tag: its description} of the scalars in ``directory``'s event files."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tags = {}
  for name in os.listdir(directory):
    for event in tf.compat.v1.train.summary_iterator(
        os.path.join(directory, name)):
      for value in event.summary.value:
        # The metadata comes with a tag's first value only.
        if value.metadata.plugin_data.plugin_name == "scalars":
          tags[value.tag] = value.metadata.summary_description
  return tags


def _check_tensorboard(model_dir):
  """The validation error heads the first group; β beside the offset loss."""
  validation = _tensorboard_scalars(model_dir / "validation")
  train = _tensorboard_scalars(model_dir / "train")
  # TensorBoard lists the groups (the tags' prefixes) alphabetically.
  groups = sorted({tag.split("/")[0] for tag in {**validation, **train}})
  assert groups[0] + "/" in trainer_lib.VALIDATION_ERROR_TAG, groups
  assert "best.keras" in validation[trainer_lib.VALIDATION_ERROR_TAG]
  assert {"loss/stack1_offset", "loss/stack1_offset_x_beta",
          "loss/stack1_coordinate", "loss/total"} <= set(train)
  assert "β = 0.0001" in train["loss/stack1_offset"]
  assert all(train.values()), train


_DISTRIBUTED_STEPS = r"""
import json, os, sys
import tensorflow as tf
devices = int(os.environ.get("LOGICAL_CPUS", "1"))
if devices > 1:
  cpu = tf.config.list_physical_devices("CPU")[0]
  tf.config.set_logical_device_configuration(
      cpu, [tf.config.LogicalDeviceConfiguration()] * devices)
from jgr_p2o_tf import progress
from jgr_p2o_tf import train_config
from jgr_p2o_tf import progress
from jgr_p2o_tf import train_config
from jgr_p2o_tf import trainer as trainer_lib
config = train_config.TrainConfig(**json.loads(sys.argv[1]))
trainer = trainer_lib.Trainer(config)
dataset = trainer.strategy.experimental_distribute_dataset(
    trainer._dataset(0).take(3))
losses = [float(trainer.train_step(batch)[0]) for batch in dataset]
print("LOSSES", json.dumps(losses))
"""


def _run_steps(config, env_extra):
  env = dict(os.environ, **env_extra)
  result = subprocess.run(
      [sys.executable, "-c", _DISTRIBUTED_STEPS, json.dumps(config)],
      capture_output=True, text=True, env=env, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  line = [l for l in result.stdout.splitlines() if l.startswith("LOSSES")][0]
  return np.array(json.loads(line.split(" ", 1)[1]))


def _step_config(records, model_dir, strategy):
  return dict(train_dir=os.path.join(records, "train"), model_dir=model_dir,
              epochs=1, strategy=strategy, augment=False, progress_bar=False, **SMALL)


def test_mirrored_on_two_cpus_matches_default(synthetic_records, tmp_path):
  default = _run_steps(
      _step_config(synthetic_records, str(tmp_path / "a"), "default"), {})
  mirrored = _run_steps(
      _step_config(synthetic_records, str(tmp_path / "b"), "mirrored"),
      {"LOGICAL_CPUS": "2"})
  print("default", default, "mirrored", mirrored)
  # Batch norm normalizes each replica's half batch, hence a tolerance.
  np.testing.assert_allclose(mirrored, default, rtol=0.05)


def _free_ports(count):
  import socket  # pylint: disable=g-import-not-at-top
  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(("127.0.0.1", 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def test_multi_worker_on_loopback_matches_default(synthetic_records, tmp_path):
  default = _run_steps(
      _step_config(synthetic_records, str(tmp_path / "a"), "default"), {})
  workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
  config = json.dumps(_step_config(synthetic_records, str(tmp_path / "b"),
                                   "multi_worker"))
  processes = []
  for index in range(2):
    tf_config = json.dumps({"cluster": {"worker": workers},
                            "task": {"type": "worker", "index": index}})
    processes.append(subprocess.Popen(
        [sys.executable, "-c", _DISTRIBUTED_STEPS, config],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, TF_CONFIG=tf_config)))
  outputs = [p.communicate(timeout=300) for p in processes]
  for p, (_, err) in zip(processes, outputs):
    assert p.returncode == 0, err[-3000:]
  results = []
  for out, _ in outputs:
    line = [l for l in out.splitlines() if l.startswith("LOSSES")][0]
    results.append(np.array(json.loads(line.split(" ", 1)[1])))
  print("default", default, "workers", results)
  np.testing.assert_allclose(results[0], results[1], rtol=1e-6)
  np.testing.assert_allclose(results[0], default, rtol=0.05)


@pytest.mark.parametrize("flags, message", [
    (["--dataset=mnist"], "mnist"),
    (["--data_dir=/nonexistent"], "/nonexistent"),
    (["--strategy=ring"], "ring"),
    (["--batch_size=0"], "--batch_size"),
])
def test_bad_flags_stop_with_one_line(synthetic_records, tmp_path, flags,
                                      message):
  command = _train_command(synthetic_records, tmp_path / "m")
  names = {f.split("=")[0] for f in flags}
  command = [c for c in command if c.split("=")[0] not in names] + flags
  result = subprocess.run(command, capture_output=True, text=True, timeout=120)
  assert result.returncode != 0
  assert "Traceback" not in result.stderr
  assert message in result.stderr


def test_batch_not_divisible_by_replicas_is_refused(synthetic_records,
                                                    tmp_path):
  config = _step_config(synthetic_records, str(tmp_path), "mirrored")
  config["batch_size"] = 31
  result = subprocess.run(
      [sys.executable, "-c", _DISTRIBUTED_STEPS, json.dumps(config)],
      capture_output=True, text=True, timeout=120,
      env=dict(os.environ, LOGICAL_CPUS="2"))
  assert result.returncode != 0
  assert "--batch_size=31 is not divisible by the 2 replicas" in result.stderr


def test_a_model_in_the_authors_convention_is_taught_in_it(synthetic_records,
                                                          tmp_path):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf import geometry  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf import input_pipeline  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf import losses  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf import train_step  # pylint: disable=g-import-not-at-top
  # With the rest of the authors' step: their loss's sum over the batch,
  # their crops' farthest depth as background.
  config = _config(synthetic_records, tmp_path, num_features=8, augment=False,
                   coordinate_convention="authors", loss_reduction="sum",
                   farthest_depth_to_background=True)
  trainer = trainer_lib.Trainer(config)
  assert trainer.model.coordinate_convention == "authors"
  batch = next(iter(input_pipeline.make_dataset(
      config.train_dir, batch_size=8, training=False)))
  batch = {k: batch[k] for k in ("depth", "joints_uvz", "cube")}
  depth = train_step.farthest_depth_to_background(batch["depth"])
  outputs = trainer.model(depth, training=True)
  # The records' labels, converted, or as they are.
  losses_by_labels = [
      losses.jgr_p2o_loss(outputs, labels, depth, convention="authors",
                          reduction="sum")[1][0]
      for labels in (geometry.convert_uvz(batch["joints_uvz"], 96, "project",
                                          "authors"), batch["joints_uvz"])]
  # One step, run eagerly: the loss it minimises on the same weights.
  _, parts = trainer._replica_train_step(batch, tf.constant([0, 0], tf.int64))  # pylint: disable=protected-access
  for name in ("coordinate", "offset"):
    np.testing.assert_allclose(float(parts[0][name]),
                               float(losses_by_labels[0][name]), rtol=1e-5)
  assert abs(float(losses_by_labels[1]["coordinate"]) -
             float(losses_by_labels[0]["coordinate"])) > 1e-4


def test_xla_by_default_only_where_tensorflow_sees_an_accelerator(
    monkeypatch):
  from absl import flags  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf import train  # pylint: disable=g-import-not-at-top,unused-import
  flag = flags.FLAGS["jit_compile"]  # a boolean flag whose default is None
  assert flag.default is None and flag.boolean
  devices = {"CPU": ["/device:CPU:0"], "GPU": [], "TPU": []}
  monkeypatch.setattr(trainer_lib.tf.config, "list_logical_devices",
                      lambda kind: devices[kind])
  assert trainer_lib.resolve_jit_compile(None) is False
  assert trainer_lib.resolve_jit_compile(True) is True
  for accelerator in ("GPU", "TPU"):
    devices[accelerator] = [f"/device:{accelerator}:0"]
    assert trainer_lib.resolve_jit_compile(None) is True
    assert trainer_lib.resolve_jit_compile(False) is False
    devices[accelerator] = []


@pytest.mark.parametrize("warmup_steps", [0, 20])
def test_the_cosine_learning_rate(warmup_steps):
  import keras  # pylint: disable=g-import-not-at-top
  config = train_config.TrainConfig(
      train_dir="", model_dir="", epochs=4, learning_rate=3e-3,
      learning_rate_schedule="cosine", warmup_steps=warmup_steps)
  steps_per_epoch = 50
  schedule = trainer_lib.make_learning_rate(config, steps_per_epoch)

  def rate(step):
    # Half a cosine period over the 200 steps of the run; the warm-up's
    # linear factor from a third, as for the exponential schedule.
    value = 3e-3 * 0.5 * (1 + np.cos(np.pi * min(step, 200) / 200))
    if step < warmup_steps:
      value *= 1 / 3 + (2 / 3) * (step + 1) / warmup_steps
    return value

  for step in (0, 1, 19, 20, 49, 50, 100, 150, 199, 200, 260):
    assert float(schedule(step)) == pytest.approx(rate(step), rel=1e-5,
                                                  abs=1e-10), step
  assert float(schedule(100)) == pytest.approx(1.5e-3, rel=1e-6)
  assert float(schedule(200)) == pytest.approx(0.0, abs=1e-12)
  after_warmup = [float(schedule(k)) for k in range(warmup_steps, 201)]
  assert all(np.diff(after_warmup) <= 0)
  # A saved optimiser's config holds its schedule, which round-trips.
  copy = keras.optimizers.schedules.deserialize(
      keras.optimizers.schedules.serialize(schedule))
  assert copy.get_config() == schedule.get_config()
  assert float(copy(150)) == float(schedule(150))
  assert trainer_lib.describe_learning_rate(config) == (
      "learning rate 0.003, cosine to 0"
      + (f" after {warmup_steps} warm-up steps" if warmup_steps else ""))


def test_the_authors_optimiser_beta1_and_warm_up():
  import keras  # pylint: disable=g-import-not-at-top
  config = train_config.TrainConfig(
      train_dir="", model_dir="", epochs=3, learning_rate=2e-4,
      adam_beta1=0.5, warmup_steps=100)
  steps_per_epoch = 150
  schedule = trainer_lib.make_learning_rate(config, steps_per_epoch)

  def authors_rate(counter):
    # dense_offset_graph.Model.train: lr = args.lr · 0.96^epoch, and while
    # epoch == 0 and counter < 100, k = (1 - (counter + 1)/100)(1 - 1/3),
    # lr = (1 - k) · args.lr.
    epoch = counter // steps_per_epoch
    if epoch == 0 and counter < 100:
      return (1 - (1 - (counter + 1) / 100) * (1 - 1 / 3)) * 2e-4
    return 2e-4 * 0.96 ** epoch

  for step in (0, 1, 50, 98, 99, 100, 149, 150, 299, 300, 449):
    assert float(schedule(step)) == pytest.approx(authors_rate(step),
                                                  rel=1e-6), step
  optimizer = trainer_lib.make_optimizer(config, schedule)
  weights = keras.Variable(np.zeros(3, np.float32))
  optimizer.build([weights])
  gradient = np.array([1.0, -2.0, 3.0], np.float32)
  for step in range(2):
    assert float(optimizer.learning_rate) == pytest.approx(
        authors_rate(step), rel=1e-6)
    optimizer.apply_gradients([(gradient, weights)])
  # The first moment after two steps: (1 - β1)(β1 g + g) with β1 = 0.5.
  momentum = [v for v in optimizer.variables if v.path.endswith("momentum")]
  np.testing.assert_allclose(np.asarray(momentum[0]), 0.75 * gradient,
                             rtol=1e-6)
