"""The manifest of prepared records: reading, writing, selecting shards."""

import json
import os

import pytest

from jgr_p2o_tf import records_manifest


def test_read_manifest_refuses_a_missing_or_unfinished_split(
    synthetic_records, tmp_path):
  train_dir = os.path.join(synthetic_records, "train")
  with pytest.raises(FileNotFoundError, match="data_prep"):
    records_manifest.read_manifest(os.fspath(tmp_path))
  manifest = records_manifest.read_manifest(train_dir)
  manifest["complete"] = False
  with open(tmp_path / "manifest.json", "w") as f:
    json.dump(manifest, f)
  with pytest.raises(ValueError, match="not finished"):
    records_manifest.read_manifest(os.fspath(tmp_path))
  assert records_manifest.read_manifest(
      os.fspath(tmp_path), require_complete=False) == manifest
  assert manifest["counts"]["written"] == 256


def _finished(file, subject, start, stop, skipped_indices):
  skipped = [{"index": i, "frame_id": f"f{i}", "shard": file,
              "kind": "empty_crop", "reason": "no hand"}
             for i in skipped_indices]
  return {"file": file, "subject": subject, "frames": [start, stop],
          "read": stop - start, "written": stop - start - len(skipped),
          "skipped": len(skipped), "skipped_frames": skipped}


def test_write_manifest_sums_the_finished_shards_per_subject(tmp_path):
  planned = [{"file": f"P{s}-0000{k}-of-00002.tfrecord", "subject": f"P{s}",
              "frames": [10 * s + 5 * k, 10 * s + 5 * k + 5]}
             for s in range(2) for k in range(2)]
  finished = {
      planned[0]["file"]: _finished(planned[0]["file"], "P0", 0, 5, [3]),
      planned[2]["file"]: _finished(planned[2]["file"], "P1", 10, 15, [11]),
  }
  manifest = records_manifest.write_manifest(
      os.fspath(tmp_path), {"dataset": "msra"}, planned, finished)
  assert records_manifest.read_manifest(
      os.fspath(tmp_path), require_complete=False) == manifest
  assert not manifest["complete"]
  assert manifest["counts"] == {"read": 10, "written": 8, "skipped": 2,
                                "skipped_by_kind": {"empty_crop": 2}}
  assert [e["index"] for e in manifest["skipped"]] == [3, 11]
  assert "skipped_frames" not in manifest["shards"][0]
  assert manifest["subjects"]["P1"] == {"shards": [planned[2]["file"]],
                                        "written": 4, "skipped": 1}
  assert records_manifest.shard_paths("d", manifest, subjects=["P1"]) == [
      os.path.join("d", planned[2]["file"])]
  with pytest.raises(ValueError, match="unknown subjects"):
    records_manifest.shard_paths("d", manifest, exclude_subjects=["P7"])
  assert records_manifest.shard_paths(
      "d", manifest, shards=[planned[2]["file"]]) == [
          os.path.join("d", planned[2]["file"])]
  with pytest.raises(ValueError, match="no finished shards"):
    records_manifest.shard_paths("d", manifest, shards=[planned[1]["file"]])
