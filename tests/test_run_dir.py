"""A training run's folder: which model file, its config; honest selection."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from jgr_p2o_tf import records_manifest
from jgr_p2o_tf import run_dir
from jgr_p2o_tf import train_config
from jgr_p2o_tf import validation_split

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(tmp_path, records, chosen_on=None, name="run"):
  """A run folder with best.keras, last.keras and best.json (stand-ins).

  ``chosen_on``: a prepared split whose frames best.json says chose
  best.keras, or None for a best.json that does not say.
  """
  model_dir = tmp_path / name
  model_dir.mkdir()
  for model in ("best.keras", "last.keras"):
    (model_dir / model).write_bytes(b"")
  best = {"epoch": 3, "step": 24, "mean_error_mm": 9.0}
  if chosen_on is not None:
    manifest = records_manifest.read_manifest(chosen_on)
    best["validation"] = validation_split.select(
        chosen_on, manifest, manifest["shards"]).describe()
  (model_dir / "best.json").write_text(json.dumps(best))
  (model_dir / "config.json").write_text(json.dumps(
      {"train_dir": os.path.join(records, "train"), "skeleton": "icvl"}))
  return model_dir


def test_the_final_model_unless_a_validation_split_chose_best(tmp_path):
  with pytest.raises(FileNotFoundError, match="no last.keras"):
    run_dir.resolve_model_path(tmp_path)
  (tmp_path / "last.keras").write_bytes(b"")
  assert run_dir.resolve_model_path(tmp_path) == str(tmp_path / "last.keras")
  # best.keras without the record of what chose it is not a default.
  (tmp_path / "best.keras").write_bytes(b"")
  (tmp_path / "best.json").write_text('{"epoch": 1}')
  assert run_dir.resolve_model_path(tmp_path) == str(tmp_path / "last.keras")
  with pytest.raises(ValueError, match="may have been chosen on the test"):
    run_dir.resolve_model_path(tmp_path, "best")
  (tmp_path / "best.json").write_text(json.dumps({"validation": {
      "source": {"dataset": "nyu", "split": "train"}}}))
  assert run_dir.resolve_model_path(tmp_path) == str(tmp_path / "best.keras")
  assert run_dir.resolve_model_path(tmp_path, "last") == str(
      tmp_path / "last.keras")


def test_resolve_model_path_names_what_is_missing(tmp_path):
  (tmp_path / "last.keras").write_bytes(b"")
  with pytest.raises(FileNotFoundError, match="only with a validation split"):
    run_dir.resolve_model_path(tmp_path, "best")
  with pytest.raises(ValueError, match="must be best, last or a path"):
    run_dir.resolve_model_path(tmp_path, "final")


def test_no_command_picks_a_model_chosen_on_the_test_split(
    synthetic_records, tmp_path, monkeypatch):
  from jgr_p2o_tf import exporter  # pylint: disable=g-import-not-at-top
  train_dir = os.path.join(synthetic_records, "train")
  test_dir = os.path.join(synthetic_records, "test")
  # The trainer refuses the test split as validation split.
  config = train_config.TrainConfig(train_dir=train_dir, validation_dir=test_dir,
                                    model_dir=str(tmp_path / "m"), epochs=1)
  with pytest.raises(ValueError, match="is the test split of synthetic"):
    validation_split.resolve(config)
  # Runs whose best.keras was (or may have been) chosen on the test split,
  # as older trainers made them: every command takes last.keras by default,
  # and refuses best.keras.
  exported = []
  monkeypatch.setattr(run_dir, "load_keras_model", lambda path, *_: path)
  monkeypatch.setattr(exporter, "export_saved_model",
                      lambda model, *_, **kw: exported.append(kw["source"]))
  for model_dir in (_run(tmp_path, synthetic_records, test_dir, "on_test"),
                    _run(tmp_path, synthetic_records, None, "unknown")):
    last, best = str(model_dir / "last.keras"), str(model_dir / "best.keras")
    assert run_dir.resolve_model_path(model_dir) == last  # evaluate, notebook
    exporter.export_from_model_dir(model_dir, tmp_path / "saved")
    assert exported[-1] == last  # export, hence infer
    with pytest.raises(ValueError, match="chosen on the test split"):
      run_dir.resolve_model_path(model_dir, "best")
    with pytest.raises(ValueError, match="may have been chosen on these"):
      run_dir.check_not_chosen_on(best, test_dir)
  result = subprocess.run(
      [sys.executable, "-m", "jgr_p2o_tf.evaluate", "--dataset=synthetic",
       f"--model_dir={tmp_path / 'on_test'}", "--model=best",
       f"--data_dir={test_dir}"],
      cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
  assert result.returncode == 2
  assert "chosen on the test split" in result.stderr.strip().splitlines()[-1]


def test_a_validation_split_never_scores_its_own_choice(synthetic_records,
                                                        tmp_path):
  train_dir = os.path.join(synthetic_records, "train")
  test_dir = os.path.join(synthetic_records, "test")
  config = train_config.TrainConfig(
      train_dir=train_dir, validation_fraction=0.25,
      model_dir=str(tmp_path / "m"), epochs=1)
  training, validation = validation_split.resolve(config)
  model_dir = tmp_path / "run"
  model_dir.mkdir()
  (model_dir / "best.keras").write_bytes(b"")
  (model_dir / "best.json").write_text(
      json.dumps({"validation": validation.describe()}))
  best = str(model_dir / "best.keras")
  assert run_dir.resolve_model_path(model_dir) == best
  run_dir.check_not_chosen_on(best, test_dir)
  with pytest.raises(ValueError, match="chosen on 64 of these frames"):
    run_dir.check_not_chosen_on(best, train_dir)
  # The same frames prepared into another folder are the same frames.
  copy = tmp_path / "copy"
  shutil.copytree(train_dir, copy)
  with pytest.raises(ValueError, match="chosen on 64 of these frames"):
    run_dir.check_not_chosen_on(best, copy)
  # ... and a validation split sharing frames with the training ones is
  # refused.
  config.validation_fraction, config.validation_dir = 0.0, str(copy)
  with pytest.raises(ValueError, match="shares 256 frames with the training"):
    validation_split.resolve(config)
  assert training.crops == 192 and validation.crops == 64


def test_validation_is_held_out_by_whole_shards_or_subjects(tmp_path):
  def manifest(subjects, shards_each, frames_each=10):
    entries, start = [], 0
    for subject in subjects:
      for k in range(shards_each):
        entries.append({"file": f"{subject or 'train'}-{start}.tfrecord",
                        "subject": subject, "written": frames_each,
                        "frames": [start, start + frames_each]})
        start += frames_each
    (tmp_path / "manifest.json").write_text(json.dumps({
        "complete": True, "dataset": "msra", "split": "all",
        "data_dir": "/raw", "reader_kwargs": {}, "shards": entries}))

  def resolve(**kwargs):
    return validation_split.resolve(train_config.TrainConfig(
        train_dir=str(tmp_path), model_dir="m", epochs=1, **kwargs))

  manifest([None], 10)
  training, validation = resolve(validation_fraction=0.15)
  assert validation.shards == ("train-80.tfrecord", "train-90.tfrecord")
  assert training.crops == 80 and validation.frames == ((80, 90), (90, 100))
  manifest(["P0", "P1", "P2", "P3"], 2)
  training, validation = resolve(validation_fraction=0.2, test_subject="P3")
  assert validation.subjects == ("P2",) and training.subjects == ("P0", "P1")
  with pytest.raises(ValueError, match="too few subjects"):
    resolve(validation_fraction=0.9, test_subject="P3")
  with pytest.raises(ValueError, match="give one validation split"):
    resolve(validation_fraction=0.2, validation_dir=str(tmp_path))


def test_read_train_config_and_its_records_manifest(tmp_path):
  with pytest.raises(FileNotFoundError, match="of a training run"):
    run_dir.read_train_config(tmp_path)
  (tmp_path / "config.json").write_text("[1]")
  with pytest.raises(ValueError, match="not a training config"):
    run_dir.read_train_config(tmp_path)
  config = {"train_dir": str(tmp_path / "records")}
  (tmp_path / "config.json").write_text(json.dumps(config))
  assert run_dir.read_train_config(tmp_path) == config
  assert run_dir.training_manifest(config) is None
  (tmp_path / "records").mkdir()
  (tmp_path / "records" / "manifest.json").write_text('{"complete": false}')
  assert run_dir.training_manifest(config) == {"complete": False}
