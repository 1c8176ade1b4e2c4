"""Fault injection: data_prep, train and export SIGKILLed at awkward moments.

Each command is killed where a kill used to lose work (inside a checkpoint
write, during validation, during a model save, between the steps of an
export's swap, with worker processes running), then rerun; the final
artefacts must equal those of an uninterrupted run. A resume that diverges
and a restart with other settings must change nothing.

How a kill lands: ``tests/kill_at.py`` runs the command in a subprocess that
SIGKILLs itself just before the N-th call of a named function. That is a
point in the program, not in time: the same on any machine however loaded,
no sleeps, and the exit status -9 proves the point was reached. (Waiting for
a file to appear and then killing would race the very write it means to
interrupt.)

Cheap by design: a one-stack, 8-feature network on the session's synthetic
records (one epoch of 4 steps of 48 frames; the fourth training shard
validates), one
uninterrupted reference run shared by the module, final reruns in this
process, where TensorFlow is imported already, and every run of the trainer
eager (``tf.config.run_functions_eagerly``): for a few steps that costs less
than tracing the train step, and what is tested, the files a run writes and
when, is the same.
"""

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

from jgr_p2o_tf import data_preparation
from jgr_p2o_tf import records_manifest
from jgr_p2o_tf import train_config
from jgr_p2o_tf import trainer as trainer_lib
from tests import dataset_fixtures

REPO = pathlib.Path(__file__).resolve().parents[1]
# Eager functions: tf.data's own stay traced, as they should here.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Even though the `tf.config.experimental_run_functions_eagerly`")
TRAIN_FLAGS = ("--num_stacks=1", "--num_features=8", "--batch_size=48",
               "--validation_fraction=0.25",
               "--epochs=1", "--checkpoint_every_steps=2", "--nojit_compile",
               "--noprogress_bar")


def _train_config(records, model_dir, **overrides):
  """What the train command makes of TRAIN_FLAGS."""
  return train_config.TrainConfig(**{
      "train_dir": os.path.join(records, "train"),
      "validation_fraction": 0.25,
      "model_dir": str(model_dir), "epochs": 1, "num_stacks": 1,
      "num_features": 8, "batch_size": 48, "checkpoint_every_steps": 2,
      "jit_compile": False, "progress_bar": False,
      **overrides})


def _killed(point, command, *options):
  """Runs ``command`` (module, args...) until it SIGKILLs itself at point.

  Returns its standard output. Output goes through files, not pipes: a
  child that outlived the kill would hold a pipe open.
  """
  with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
    returncode = subprocess.run(
        [sys.executable, "-m", "tests.kill_at", *options, point, "--",
         *command], cwd=REPO, stdout=out, stderr=err, timeout=300,
        check=False).returncode
    out.seek(0)
    err.seek(0)
    stdout, stderr = out.read().decode(), err.read().decode()
  assert returncode == -signal.SIGKILL, (
      f"never reached {point}:\n{stderr[-3000:]}")
  return stdout


def _train(config, log=lambda _: None):
  """trainer.train(config), with TensorFlow's functions run eagerly."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.run_functions_eagerly(True)
  try:
    return trainer_lib.train(config, log=log)
  finally:
    tf.config.run_functions_eagerly(False)


@pytest.fixture(scope="module")
def reference_run(synthetic_records, tmp_path_factory):
  """The uninterrupted run: 4 steps of one epoch, checkpoints every 2."""
  model_dir = tmp_path_factory.mktemp("reference") / "model"
  _train(_train_config(synthetic_records, model_dir))
  return model_dir


def _checkpoints(model_dir):
  """Names of the checkpoints the run's index lists, latest last."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  state = tf.train.get_checkpoint_state(str(model_dir / "checkpoints"))
  return [os.path.basename(p) for p in state.all_model_checkpoint_paths]


def _leftovers(directory):
  return sorted(str(p.relative_to(directory)) for p in directory.rglob("*")
                if p.name.endswith((".tmp", ".tmp.keras", "_temp", ".partial",
                                    ".old")))


def _assert_same_run(model_dir, reference):
  """Same steps, checkpoints, history, best epoch and models."""
  import keras  # pylint: disable=g-import-not-at-top
  history, expected = (json.loads((d / "history.json").read_text())
                       for d in (model_dir, reference))
  assert [(h["epoch"], h["step"]) for h in history] == [(1, 4)]
  for ours, theirs in zip(history, expected):
    assert ours.keys() == theirs.keys()
    for key in ours:
      assert ours[key] == pytest.approx(theirs[key], rel=1e-4), key
  best, expected_best = (json.loads((d / "best.json").read_text())
                         for d in (model_dir, reference))
  assert best.pop("validation") == expected_best.pop("validation")
  assert best == pytest.approx(expected_best, rel=1e-4)
  assert _checkpoints(model_dir) == _checkpoints(reference) == [
      "ckpt-2", "ckpt-4"]
  for name in ("best.keras", "last.keras"):
    weights, expected_weights = (
        keras.saving.load_model(d / name, compile=False).get_weights()
        for d in (model_dir, reference))
    for ours, theirs in zip(weights, expected_weights):
      np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)
  assert not _leftovers(model_dir)


def test_train_killed_at_three_points_ends_as_an_uninterrupted_run(
    synthetic_records, reference_run, tmp_path):
  model_dir = tmp_path / "model"
  command = ("jgr_p2o_tf.train", "--dataset=synthetic",
             f"--data_dir={synthetic_records}", f"--model_dir={model_dir}",
             *TRAIN_FLAGS)
  # Inside the write of the epoch's last checkpoint (step 4): its shards
  # written, not yet merged.
  _killed("tensorflow.python.ops.gen_io_ops:merge_v2_checkpoints@2", command,
          "--eager")
  assert _leftovers(model_dir) == ["checkpoints/ckpt-4_temp"]
  assert _checkpoints(model_dir) == ["ckpt-2"]

  # The rerun goes on from step 2 and is killed during the validation that
  # follows the epoch's last checkpoint.
  output = _killed("jgr_p2o_tf.evaluation:predict_records", command, "--eager")
  assert "at step 2." in output
  assert _checkpoints(model_dir) == ["ckpt-2", "ckpt-4"]
  assert not (model_dir / "history.json").exists()

  # The next finishes the epoch: validation, best.keras, then last.keras, in
  # whose save it is killed, an empty temporary file left.
  output = _killed("keras.src.saving.saving_lib:_save_model_to_fileobj@2",
                   command, "--eager")
  assert "at step 4." in output
  assert (model_dir / "best.keras").exists()
  assert not (model_dir / "last.keras").exists()
  assert (model_dir / "last.keras.tmp.keras").stat().st_size == 0
  assert not (model_dir / "history.json").exists()

  # The last rerun, here, finishes the epoch again.
  lines = []
  _train(_train_config(synthetic_records, model_dir), log=lines.append)
  # After the start summary (model, data, schedule, output).
  assert lines[4].startswith("Resumed from")
  assert lines[4].endswith("ckpt-4 at step 4.")
  _assert_same_run(model_dir, reference_run)


def _snapshot(model_dir):
  """Every file of a run but its TensorBoard logs, as bytes."""
  return {str(p.relative_to(model_dir)): p.read_bytes()
          for p in sorted(model_dir.rglob("*"))
          if p.is_file() and p.relative_to(model_dir).parts[0] not in (
              "train", "validation")}


def test_a_diverging_resume_stops_before_replacing_anything(
    synthetic_records, reference_run, tmp_path):
  model_dir = tmp_path / "model"
  shutil.copytree(reference_run, model_dir)
  before = _snapshot(model_dir)
  with pytest.raises(trainer_lib.TrainingDiverged) as error:
    _train(_train_config(synthetic_records, model_dir, epochs=2,
                         learning_rate=1e35))
  assert str(error.value) == (
      "training diverged at step 6: the training loss is nan; stopped "
      f"before writing it: {model_dir}/checkpoints/ckpt-4 is the last "
      "checkpoint, and best.keras, last.keras and history.json are as they "
      "were; rerun with a lower --learning_rate")
  after = _snapshot(model_dir)
  assert json.loads(after.pop("config.json"))["learning_rate"] == 1e35
  del before["config.json"]
  assert after == before


def test_a_restart_with_other_settings_changes_nothing(
    synthetic_records, reference_run, tmp_path):
  model_dir = tmp_path / "model"
  shutil.copytree(reference_run, model_dir)
  (model_dir / "flags.txt").write_text("--num_features=8\n")
  before = _snapshot(model_dir)
  result = subprocess.run(
      [sys.executable, "-m", "jgr_p2o_tf.train", "--dataset=synthetic",
       f"--data_dir={synthetic_records}", f"--model_dir={model_dir}",
       *TRAIN_FLAGS, "--num_features=16", "--head=p2o"], cwd=REPO,
      capture_output=True, text=True, timeout=120, check=False)
  assert result.returncode == 2, result.stderr[-2000:]
  assert result.stderr.strip().splitlines() == [
      f"error: {model_dir} holds a run trained with other settings: "
      "--head=p2o (the run's: jgr), --num_features=16 (the run's: 8); "
      f"restart it with its own flags (--flagfile={model_dir}/flags.txt) or "
      "choose another --model_dir"]
  assert _snapshot(model_dir) == before
  config = _train_config(synthetic_records, model_dir, skeleton="nyu")
  with pytest.raises(ValueError, match=r"--skeleton=nyu \(the run's: icvl\)"):
    _train(config)
  assert _snapshot(model_dir) == before


def _dead(pid):
  """Whether a process is gone (or a zombie nobody reaps)."""
  try:
    with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
      return f.read().rsplit(")", 1)[1].split()[0] == "Z"
  except FileNotFoundError:
    return True


def test_data_prep_killed_with_its_workers_resumes_to_the_same_shards(
    tmp_path):
  raw = tmp_path / "raw"
  dataset_fixtures.write_icvl(raw, 12)
  reference = data_preparation.prepare("icvl", str(raw), "train",
                                       str(tmp_path / "reference"),
                                       num_shards=6, progress=False)
  out = tmp_path / "out"
  pids = tmp_path / "workers.json"
  # Once the first shard is renamed into place, before the manifest lists it.
  _killed("jgr_p2o_tf.records_manifest:write_manifest@2",
          ("data_prep", "--dataset=icvl", f"--data_dir={raw}", "--split=train",
           f"--out_dir={out}", "--num_shards=6", "--workers=2"),
          f"--pids_to={pids}")
  workers = json.loads(pids.read_text())
  assert len(workers) == 2
  # The workers die with their parent: no straggler writes into out/.
  deadline = time.monotonic() + 30
  while not all(map(_dead, workers)) and time.monotonic() < deadline:
    time.sleep(0.05)
  stragglers = [pid for pid in workers if not _dead(pid)]
  for pid in stragglers:
    os.kill(pid, signal.SIGKILL)
  assert not stragglers, "data_prep's workers outlived it"
  assert not records_manifest.read_manifest(
      str(out), require_complete=False)["complete"]
  manifest = data_preparation.prepare("icvl", str(raw), "train", str(out),
                                      num_shards=6, progress=False)
  assert manifest == {**reference, "data_dir": manifest["data_dir"]}
  assert sorted(os.listdir(out)) == sorted(os.listdir(tmp_path / "reference"))
  for shard in reference["shards"]:
    assert ((out / shard["file"]).read_bytes() ==
            (tmp_path / "reference" / shard["file"]).read_bytes())


def test_export_killed_in_its_save_and_in_its_swap(reference_run, tmp_path):
  from jgr_p2o_tf import exporter  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf import inference  # pylint: disable=g-import-not-at-top
  reference = tmp_path / "reference"
  exporter.export_from_model_dir(reference_run, reference, jit_compile=False)
  crops = np.random.default_rng(0).uniform(-1, 1, (2, 96, 96, 1))
  expected = inference.Predictor(reference).predict_crop(crops)
  # The export being replaced: marked, so that it is told from the new one.
  target = tmp_path / "saved_model"
  shutil.copytree(reference, target)
  (target / "OLD").write_text("the export before")
  command = ("jgr_p2o_tf.export", f"--model_dir={reference_run}",
             f"--export_dir={target}", "--overwrite", "--nojit_compile")

  # Inside tf.saved_model.save: the new export half written, the old whole.
  _killed("tensorflow.python.ops.gen_io_ops:merge_v2_checkpoints", command)
  assert (tmp_path / "saved_model.partial").is_dir()
  assert (target / "OLD").exists()
  for key, value in inference.Predictor(target).predict_crop(crops).items():
    np.testing.assert_array_equal(value, expected[key])

  # Between the two renames of a swap where the system cannot exchange two
  # folders in one step: the old export waits at .old, the new at .partial.
  _killed("os:replace@2<jgr_p2o_tf.exporter", command,
          "--unavailable=jgr_p2o_tf.exporter:_exchange_directories")
  assert not target.exists()
  assert (tmp_path / "saved_model.old" / "OLD").exists()
  assert (tmp_path / "saved_model.partial" / "saved_model.pb").exists()

  # The rerun puts the old export back, then swaps the new one in.
  exporter.export_from_model_dir(reference_run, target, jit_compile=False,
                                 overwrite=True)
  assert not (target / "OLD").exists()
  assert sorted(os.listdir(tmp_path)) == ["reference", "saved_model"]
  assert sorted(os.listdir(target)) == sorted(os.listdir(reference))
  for key, value in inference.Predictor(target).predict_crop(crops).items():
    np.testing.assert_array_equal(value, expected[key])
