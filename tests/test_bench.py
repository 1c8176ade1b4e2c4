"""The benchmark: timing, report structure, the JAX path, the CLI.

The timing functions run with tiny models and one or two iterations: these
tests check what is measured and reported, never how fast anything is.
"""

import json
import os
import pathlib
import subprocess
import sys

import keras
import onnxruntime
import pytest
import tensorflow as tf

from jgr_p2o_tf.benchmark import report as report_lib
from jgr_p2o_tf.benchmark import timing
from jgr_p2o_tf.benchmark import training_speed
from jgr_p2o_tf.benchmark import workload
from jgr_p2o_tf.model import build_model

REPO = pathlib.Path(__file__).resolve().parents[1]
ROW_KEYS = {"part", "measurement", "batch_size", "runs", "median_ms",
            "p90_ms", "frames_per_s", "first_call_s", "target", "target_met",
            "reference"}
TINY_SETTINGS = workload.Settings(
    batch_sizes=(1, 2), latency_runs=2, throughput_runs=1, warmup_runs=1,
    train_steps=1, train_batch_sizes=(2,), train_precisions=("none",),
    train_jit_compile=(False,), input_batches=2,
    record_frames=workload.TRAIN_BATCH_SIZE, calibration_frames=2,
    accuracy_frames=3)
TINY_MODEL = workload.ModelConfig(num_stacks=1, num_features=16)


def test_time_calls_times_the_runs_after_the_warmup():
  calls = []
  first, seconds = timing.time_calls(lambda: calls.append(1), runs=5,
                                        warmup_runs=3)
  assert len(calls) == 8 and seconds.shape == (5,) and first >= 0


def test_report_of_every_part_under_tensorflow():
  lines = []
  report = report_lib.run_benchmark(workload.PARTS, TINY_MODEL,
                                   TINY_SETTINGS, log=lines.append)
  json.loads(json.dumps(report))
  assert set(report) == {"benchmark", "machine", "model", "settings",
                         "results", "skipped", "notes"}
  assert report["skipped"] == []
  assert report["notes"] == [timing.TIMING_NOTE, (
      "int8: crop.onnx quantized by onnxruntime's quantize_static (QDQ; "
      "per-channel int8 weights of the convolutions, uint8 activations, "
      "MinMax over synthetic crops); accuracy of the timed network (random "
      "weights), speed of the timed network (random weights)"),
      training_speed.TRAINING_NOTE]
  machine = report["machine"]
  assert machine["backend"] == "tensorflow"
  assert machine["tensorflow"] == tf.__version__
  assert machine["onnxruntime"] == onnxruntime.__version__
  assert machine["cpu_cores"] >= 1 and len(machine["load_average_end"]) == 3
  model = report["model"]
  assert model["parameters"] == build_model(
      14, num_stacks=1, num_features=16, skeleton="nyu").count_params()
  assert model["flops_per_frame"] == sum(model["flops_breakdown"].values())

  rows = report["results"]
  timed = [r for r in rows
           if not {"percent", "mm", "ratio"} & set(r)]
  for row in timed:
    assert ROW_KEYS <= set(row), row
    assert 0 < row["median_ms"] <= row["p90_ms"]
  names = {(r["part"], r["measurement"], r["batch_size"]) for r in rows}
  for part, batch_sizes in (("model", (1, 2)), ("xla", (1, 2)),
                            ("saved_model", (1, 2)), ("onnxruntime", (1, 2)),
                            ("openvino", (1, 2)), ("train", (2,)),
                            ("input", (32,))):
    assert {b for p, _, b in names if p == part} - {None} == set(
        batch_sizes), part
  by_name = {(r["measurement"], r["batch_size"]): r for r in rows}
  crop = by_name[("'crop' signature, 96×96 crop", 1)]
  assert crop["target"] == "≤ 9 ms" and isinstance(crop["target_met"], bool)
  assert crop["target_met"] == (crop["median_ms"] <= 9)
  assert by_name[("'serving_default', 640×480 frame + crop", 1)][
      "target"] == "≤ 11 ms"
  assert by_name[("'crop' signature, 96×96 crop", 2)]["target"] is None
  # Finding the hand: timed in turns with the centre given, same export.
  finding = by_name[("finding the hand over the centre given (same export, "
                     "calls in turns)", 1)]
  assert finding["target"] == "≤ 25%"
  assert finding["target_met"] == (finding["percent"] <= 25)
  assert finding["percent"] == pytest.approx(
      100 * (finding["finding_median_ms"] / finding["given_median_ms"] - 1))
  assert finding["reference"] == (f"{finding['finding_median_ms']:.2f} vs "
                                  f"{finding['given_median_ms']:.2f} ms median")
  # TensorFlow here with XLA off only (compiling the training step would
  # take most of a minute), then JAX in a child process, then the ratios.
  train = [(r["measurement"], r.get("backend"), r.get("precision"))
           for r in rows if r["part"] == "train"]
  assert train == [
      ("train step (tf.function, no XLA), augmentation on, float32",
       "tensorflow", "none"),
      ("train step (tf.function, no XLA), augmentation off, float32",
       "tensorflow", "none"),
      ("augmentation cost (tf.function, no XLA), float32", "tensorflow",
       "none"),
      ("train step (jax.jit), augmentation on, float32", "jax", "none"),
      ("train step (jax.jit), augmentation off, float32", "jax", "none"),
      ("augmentation cost (jax.jit), float32", "jax", "none"),
      ("JAX / TensorFlow step time, float32", None, "none")]
  augmented = by_name[(train[0][0], 2)]
  plain = by_name[(train[1][0], 2)]
  assert augmented["frames_per_s"] == pytest.approx(
      2 / (augmented["median_ms"] / 1e3))
  cost = by_name[(train[2][0], 2)]
  assert cost["percent"] == pytest.approx(
      100 * (augmented["median_ms"] / plain["median_ms"] - 1))
  assert cost["target"] == "≤ 5%"
  ratio = by_name[("JAX / TensorFlow step time, float32", 2)]
  assert ratio["ratio"] == pytest.approx(
      by_name[(train[3][0], 2)]["median_ms"] / augmented["median_ms"])
  assert ratio["tensorflow_measurement"] == train[0][0]
  assert ratio["target"] == "≤ 1.2×"
  for runtime in ("onnxruntime", "openvino"):
    runtime_rows = {(r["measurement"], r["batch_size"]): r for r in rows
                    if r["part"] == runtime}
    assert list(runtime_rows) == [
        ("crop.onnx, float32, 96×96 crop", 1),
        ("crop.onnx, float32, 96×96 crop", 2),
        ("full_frame.onnx, float32, 640×480 frame + crop", 1),
        ("full_frame.onnx, float32, 640×480 frame + crop", 2),
        ("full-frame graph over crop graph, float32", 1),
        ("crop.onnx, int8 (quantize_crop_graph), 96×96 crop", 1),
        ("crop.onnx, int8 (quantize_crop_graph), 96×96 crop", 2),
        ("int8 − float32 mean error, 3 synthetic test frames, the timed "
         "network (random weights)", None)]
    crop_row = runtime_rows[("crop.onnx, float32, 96×96 crop", 1)]
    assert crop_row["target"] == "≤ 5 ms"
    assert crop_row["speedup"] == pytest.approx(
        crop["median_ms"] / crop_row["median_ms"])
    # The full-frame graph against the signature given the centre, not the
    # export that finds the hand.
    assert runtime_rows[("full_frame.onnx, float32, 640×480 frame + crop",
                         1)]["speedup"] == pytest.approx(by_name[(
        "'serving_default', 640×480 frame + crop", 1)]["median_ms"] /
        runtime_rows[("full_frame.onnx, float32, 640×480 frame + crop",
                      1)]["median_ms"])
    cost = runtime_rows[("full-frame graph over crop graph, float32", 1)]
    assert cost["percent"] == pytest.approx(100 * (runtime_rows[(
        "full_frame.onnx, float32, 640×480 frame + crop", 1)]["median_ms"] /
        runtime_rows[("crop.onnx, float32, 96×96 crop", 1)]["median_ms"] - 1))
    accuracy = rows[[r["part"] for r in rows].index(runtime) + 7]
    assert accuracy["mm"] == pytest.approx(
        accuracy["int8_mm"] - accuracy["float32_mm"])
    assert accuracy["target"] == "≤ 0.3 mm"
  inputs = by_name[("tf.data make_dataset(training=True)", 32)]
  assert inputs["frames_per_s"] == pytest.approx(32 * inputs["batches_per_s"])

  lines = report_lib.format_report(report).splitlines()
  assert lines[4].split() == ["part", "measurement", "batch", "median", "ms",
                              "p90", "ms", "frames/s", "other", "target",
                              "met"]
  table = lines[5:5 + len(rows)]
  assert [line.split()[0] for line in table] == [r["part"] for r in rows]
  assert table[rows.index(crop)].split()[-1] == (
      "pass" if crop["target_met"] else "miss")
  assert lines[-3:] == [f"note: {note}" for note in report["notes"]]
  accuracy_line = table[[r.get("mm") for r in rows].index(accuracy["mm"])]
  assert f"{accuracy['mm']:+.2f} mm (" in accuracy_line
  ratio_line = table[rows.index(ratio)]
  assert f"{ratio['ratio']:.2f}× TensorFlow" in ratio_line
  assert keras.config.dtype_policy().name == "float32"


def test_bad_arguments_are_refused():
  with pytest.raises(ValueError, match="parts must be some of"):
    report_lib.run_benchmark(["model", "gpu"], TINY_MODEL, TINY_SETTINGS)
  with pytest.raises(ValueError, match="latency_runs"):
    report_lib.run_benchmark(["model"], TINY_MODEL,
                            workload.Settings(latency_runs=0))


def test_cli_under_jax_runs_without_tensorflow(tmp_path):
  output = tmp_path / "bench.json"
  # As on a GPU machine without TensorFlow (benchmarks/accelerator.sh): any
  # import of TensorFlow, tf2onnx, OpenCV or onnxruntime fails.
  script = (
      "import importlib.abc, sys\n"
      "class Absent(importlib.abc.MetaPathFinder):\n"
      "  def find_spec(self, name, path=None, target=None):\n"
      "    if name.split('.')[0] in ('tensorflow', 'tf2onnx', 'cv2', "
      "'onnxruntime', 'openvino', 'tf_keras'):\n"
      "      raise ModuleNotFoundError(f'No module named {name!r}')\n"
      "sys.meta_path.insert(0, Absent())\n"
      "from jgr_p2o_tf import bench; bench.run()\n")
  result = subprocess.run(
      [sys.executable, "-c", script, "--quick", "--num_stacks=1",
       "--num_features=16", "--runs=2", "--batch_sizes=1,2",
       "--parts=xla,saved_model,train,input", f"--output_json={output}",
       "--mixed_precision=bfloat16", "--train_backends=jax",
       "--train_precisions=bfloat16", "--train_batch_sizes=2"],
      capture_output=True, text=True, timeout=180, cwd=REPO,
      env={**{k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"},
           "KERAS_BACKEND": "jax"})
  assert result.returncode == 0, result.stderr[-3000:]
  # No child here to set malloc's huge pages: the user is told how.
  assert ("without huge pages: start it with "
          "GLIBC_TUNABLES=glibc.malloc.hugetlb=1" in result.stderr)
  report = json.loads(output.read_text())
  assert report["machine"]["backend"] == "jax"
  assert report["model"]["dtype_policy"] == "mixed_bfloat16"
  assert report["model"]["num_features"] == 16
  assert {s["part"] for s in report["skipped"]} == {"saved_model", "input"}
  measurements = {(r["part"], r["measurement"], r["batch_size"])
                  for r in report["results"]}
  assert measurements == {
      ("xla", "jax.jit(model.stateless_call)", 1),
      ("xla", "jax.jit(model.stateless_call)", 2),
      ("train", "train step (jax.jit), augmentation on, mixed bfloat16",
       2),
      ("train", "train step (jax.jit), augmentation off, mixed bfloat16",
       2),
      ("train", "augmentation cost (jax.jit), mixed bfloat16", 2)}
  assert report["results"][0]["runs"] == 2
  assert "note: saved_model: needs TensorFlow" in result.stdout
  assert report["notes"] == [timing.TIMING_NOTE,
                             training_speed.TRAINING_NOTE]
  assert "jax.jit(model.stateless_call)" in result.stdout


def test_a_jax_child_gets_huge_pages_unless_told_otherwise(monkeypatch):
  monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
  environment = training_speed.child_environment("jax")
  assert environment["KERAS_BACKEND"] == "jax"
  assert environment["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=1"
  assert "GLIBC_TUNABLES" not in training_speed.child_environment(
      "tensorflow")
  # A user's own tunables win.
  monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")
  assert training_speed.child_environment("jax")["GLIBC_TUNABLES"] == (
      "glibc.malloc.arena_max=2")


def test_cli_refuses_float16_training():
  result = subprocess.run(
      [sys.executable, "-m", "jgr_p2o_tf.bench", "--parts=train",
       "--train_precisions=none,float16"],
      capture_output=True, text=True, timeout=120, cwd=REPO,
      env={**os.environ, "KERAS_BACKEND": "jax"})
  assert result.returncode == 2
  assert result.stderr.strip().splitlines()[-1].startswith(
      "error: float16 training needs loss scaling")
