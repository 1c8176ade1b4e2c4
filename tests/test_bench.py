"""The benchmark: FLOP counts, report structure, the JAX path, the CLI.

The timing functions run with tiny models and one or two iterations: these
tests check what is measured and reported, never how fast anything is.
"""

import collections
import json
import os
import pathlib
import subprocess
import sys

import keras
import pytest
import tensorflow as tf

from jgr_p2o_tf import benchmark
from jgr_p2o_tf.layers.joint_graph_reasoning import JointGraphReasoning
from jgr_p2o_tf.model import build_model

REPO = pathlib.Path(__file__).resolve().parents[1]
ROW_KEYS = {"part", "measurement", "batch_size", "runs", "median_ms",
            "p90_ms", "frames_per_s", "first_call_s", "target", "target_met",
            "reference"}
TINY_SETTINGS = benchmark.Settings(
    batch_sizes=(1, 2), latency_runs=2, throughput_runs=1, warmup_runs=1,
    train_steps=1, train_jit_compile=(False,), input_batches=2,
    record_frames=benchmark.TRAIN_BATCH_SIZE)
TINY_MODEL = benchmark.ModelConfig(num_stacks=1, num_features=16)


def test_flops_of_a_small_conv_model_match_the_formula():
  inputs = keras.Input((16, 16, 3))
  x = keras.layers.Conv2D(8, 3, strides=2, padding="same")(inputs)
  x = keras.layers.BatchNormalization()(x)
  x = keras.layers.ReLU()(x)
  x = keras.layers.Conv2D(4, 1, use_bias=False)(x)
  x = keras.layers.MaxPooling2D(2)(x)
  x = keras.layers.Conv2D(6, (3, 1), padding="valid", groups=2)(x)
  x = keras.layers.Dense(5)(x)
  outputs = keras.layers.Dense(7)(keras.layers.Flatten()(x))
  flops = benchmark.count_flops(keras.Model(inputs, outputs))
  # 16×16 → 8×8 (stride 2) → 4×4 (pool) → 2×4 (3×1 valid); the first dense
  # layer acts on each of the 2·4 pixels, the second on the flattened 2·4·5.
  conv2d = (2 * 3 * 3 * 3 * 8 * 8 * 8 + 2 * 1 * 1 * 8 * 4 * 8 * 8 +
            2 * 3 * 1 * (4 // 2) * 6 * 2 * 4)
  dense = 2 * (2 * 4) * 6 * 5 + 2 * (2 * 4 * 5) * 7
  assert flops == {"total": conv2d + dense, "conv2d": conv2d, "dense": dense,
                   "contractions": 0}


@pytest.mark.parametrize("graph", ["parameterized", "feature_similarity"])
def test_flops_of_the_jgr_module_match_the_formula(graph):
  height, width, channels, joints = 6, 4, 16, 5
  inputs = keras.Input((height, width, channels))
  enhanced, voting_maps = JointGraphReasoning(joints, graph)(inputs)
  flops = benchmark.count_flops(keras.Model(inputs, [enhanced, voting_maps]))
  pixels = height * width
  conv2d = 2 * pixels * channels * (joints + channels + channels +
                                    2 * channels)
  dense = 2 * joints * channels * channels
  contractions = 2 * 2 * pixels * joints * channels + (
      2 * joints * joints * channels)
  if graph == "feature_similarity":
    dense *= 3
    contractions += 2 * joints * joints * channels
  assert flops == {"total": conv2d + dense + contractions, "conv2d": conv2d,
                   "dense": dense, "contractions": contractions}


@pytest.mark.parametrize("head", ["jgr", "p2o", "attention", "dhm"])
def test_convolution_and_dense_flops_agree_with_tensorflows_profiler(head):
  model = build_model(14, num_stacks=2, head=head, num_features=16,
                      input_size=64, skeleton="nyu")
  flops = benchmark.count_flops(model)
  function = tf.function(lambda x: model(x, training=False))
  graph = function.get_concrete_function(
      tf.TensorSpec((1, 64, 64, 1), tf.float32)).graph
  options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
  options["output"] = "none"
  profile = tf.compat.v1.profiler.profile(graph=graph, cmd="graph",
                                          options=options)
  # The profiler's own FLOPs of each node, summed by op type (it has no
  # formula for Einsum, which the JGR module's contractions use).
  by_type = collections.Counter()
  nodes = list(profile.children)
  while nodes:
    node = nodes.pop()
    nodes += node.children
    by_type[graph.get_operation_by_name(node.name).type] += node.float_ops
  assert flops["conv2d"] == by_type["Conv2D"]
  assert flops["dense"] == by_type["MatMul"]
  assert (flops["dense"] > 0) == (head in ("jgr", "dhm"))
  assert 0 < flops["contractions"] < 0.1 * flops["total"]


def test_default_model_is_under_a_gigaflop_per_frame():
  model = benchmark.build_benchmark_model(benchmark.ModelConfig())
  flops = benchmark.count_flops(model)
  assert model.count_params() == 1_378_976
  assert 0.5e9 < flops["total"] < 1e9


def test_a_layer_without_a_formula_is_refused():
  inputs = keras.Input((8, 8, 3))
  outputs = keras.layers.DepthwiseConv2D(3)(inputs)
  with pytest.raises(ValueError, match="No FLOP formula.*DepthwiseConv2D"):
    benchmark.count_flops(keras.Model(inputs, outputs))


def test_time_calls_times_the_runs_after_the_warmup():
  calls = []
  first, seconds = benchmark.time_calls(lambda: calls.append(1), runs=5,
                                        warmup_runs=3)
  assert len(calls) == 8 and seconds.shape == (5,) and first >= 0


def test_report_of_every_part_under_tensorflow():
  lines = []
  report = benchmark.run_benchmark(benchmark.PARTS, TINY_MODEL,
                                   TINY_SETTINGS, log=lines.append)
  json.loads(json.dumps(report))
  assert set(report) == {"benchmark", "machine", "model", "settings",
                         "results", "skipped", "notes"}
  assert report["skipped"] == [] and report["notes"] == [
      benchmark.TIMING_NOTE]
  machine = report["machine"]
  assert machine["backend"] == "tensorflow"
  assert machine["tensorflow"] == tf.__version__
  assert machine["cpu_cores"] >= 1 and len(machine["load_average_end"]) == 3
  model = report["model"]
  assert model["parameters"] == build_model(
      14, num_stacks=1, num_features=16, skeleton="nyu").count_params()
  assert model["flops_per_frame"] == sum(model["flops_breakdown"].values())

  rows = report["results"]
  timed = [r for r in rows if "percent" not in r]
  for row in timed:
    assert ROW_KEYS <= set(row), row
    assert 0 < row["median_ms"] <= row["p90_ms"]
  names = {(r["part"], r["measurement"], r["batch_size"]) for r in rows}
  for part, batch_sizes in (("model", (1, 2)), ("xla", (1, 2)),
                            ("saved_model", (1, 2)), ("train", (32,)),
                            ("input", (32,))):
    assert {b for p, _, b in names if p == part} == set(batch_sizes), part
  by_name = {(r["measurement"], r["batch_size"]): r for r in rows}
  crop = by_name[("'crop' signature, 96×96 crop", 1)]
  assert crop["target"] == "≤ 9 ms" and isinstance(crop["target_met"], bool)
  assert crop["target_met"] == (crop["median_ms"] <= 9)
  assert by_name[("'serving_default', 640×480 frame + crop", 1)][
      "target"] == "≤ 11 ms"
  assert by_name[("'crop' signature, 96×96 crop", 2)]["target"] is None
  # XLA off only: compiling the training step would take most of a minute.
  assert [r["measurement"] for r in rows if r["part"] == "train"] == [
      "Trainer.train_step, no XLA, augmentation on",
      "Trainer.train_step, no XLA, augmentation off",
      "augmentation cost, no XLA"]
  augmented = by_name[("Trainer.train_step, no XLA, augmentation on", 32)]
  plain = by_name[("Trainer.train_step, no XLA, augmentation off", 32)]
  assert augmented["target"] == "≥ 60 frames/s" and plain["target"] is None
  cost = by_name[("augmentation cost, no XLA", 32)]
  assert cost["percent"] == pytest.approx(
      100 * (augmented["median_ms"] / plain["median_ms"] - 1))
  assert cost["target"] == "≤ 5%"
  inputs = by_name[("tf.data make_dataset(training=True)", 32)]
  assert inputs["frames_per_s"] == pytest.approx(32 * inputs["batches_per_s"])

  lines = benchmark.format_report(report).splitlines()
  assert lines[4].split() == ["part", "measurement", "batch", "median", "ms",
                              "p90", "ms", "frames/s", "other", "target",
                              "met"]
  table = lines[5:5 + len(rows)]
  assert [line.split()[0] for line in table] == [r["part"] for r in rows]
  assert table[rows.index(crop)].split()[-1] == (
      "pass" if crop["target_met"] else "miss")
  assert lines[-1] == f"note: {benchmark.TIMING_NOTE}"
  assert keras.config.dtype_policy().name == "float32"


def test_bad_arguments_are_refused():
  with pytest.raises(ValueError, match="parts must be some of"):
    benchmark.run_benchmark(["model", "gpu"], TINY_MODEL, TINY_SETTINGS)
  with pytest.raises(ValueError, match="latency_runs"):
    benchmark.run_benchmark(["model"], TINY_MODEL,
                            benchmark.Settings(latency_runs=0))


def test_cli_under_jax_times_the_model_and_skips_tensorflow(tmp_path):
  output = tmp_path / "bench.json"
  # TensorFlow must never be imported: it is not installed where JAX runs.
  script = ("import atexit, sys; atexit.register(lambda: print("
            "'TF_IMPORTED', 'tensorflow' in sys.modules)); "
            "from jgr_p2o_tf import bench; bench.run()")
  result = subprocess.run(
      [sys.executable, "-c", script, "--quick", "--num_stacks=1",
       "--num_features=16", "--runs=2", "--batch_sizes=1,2",
       "--parts=xla,saved_model,train,input", f"--output_json={output}",
       "--mixed_precision=bfloat16"],
      capture_output=True, text=True, timeout=180, cwd=REPO,
      env={**os.environ, "KERAS_BACKEND": "jax"})
  assert result.returncode == 0, result.stderr[-3000:]
  assert "TF_IMPORTED False" in result.stdout
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
      ("train", "jax.jit(value_and_grad + Adam.stateless_apply), no augm.",
       2)}
  assert report["results"][0]["runs"] == 2
  assert "note: saved_model: needs TensorFlow" in result.stdout
  assert report["notes"] == [benchmark.TIMING_NOTE,
                             benchmark.JAX_TRAINING_NOTE]
  assert "jax.jit(model.stateless_call)" in result.stdout


def test_cli_refuses_float16_training_under_jax():
  result = subprocess.run(
      [sys.executable, "-m", "jgr_p2o_tf.bench", "--parts=train",
       "--mixed_precision=float16"],
      capture_output=True, text=True, timeout=120, cwd=REPO,
      env={**os.environ, "KERAS_BACKEND": "jax"})
  assert result.returncode == 2
  assert result.stderr.strip().splitlines()[-1].startswith(
      "error: float16 training needs loss scaling")
