"""A training run's folder: which model file, its config."""

import json

import pytest

from jgr_p2o_tf import run_dir


def test_best_or_last_model_prefers_best(tmp_path):
  with pytest.raises(FileNotFoundError, match="no best.keras or last.keras"):
    run_dir.best_or_last_model(tmp_path)
  (tmp_path / "last.keras").write_bytes(b"")
  assert run_dir.best_or_last_model(tmp_path) == str(tmp_path / "last.keras")
  (tmp_path / "best.keras").write_bytes(b"")
  assert run_dir.best_or_last_model(tmp_path) == str(tmp_path / "best.keras")


def test_resolve_model_path_names_what_is_missing(tmp_path):
  (tmp_path / "last.keras").write_bytes(b"")
  assert run_dir.resolve_model_path(tmp_path, "last") == str(
      tmp_path / "last.keras")
  with pytest.raises(FileNotFoundError, match="only when it validates"):
    run_dir.resolve_model_path(tmp_path, "best")
  with pytest.raises(ValueError, match="must be best, last or a path"):
    run_dir.resolve_model_path(tmp_path, "final")


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
