"""The README's results block, rendered from a benchmark JSON (make bench)."""

import json
import os
import subprocess
import sys

import pytest

from jgr_p2o_tf.benchmark import table

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MACHINE = {"date": "2026-12-01T10:00:00+00:00", "cpu_model": "Intel Xeon",
           "cpu_cores": 2, "cpu_cores_usable": 2, "memory_gib": 7.7,
           "load_average": [0.1, 0.2, 0.3], "accelerators": [],
           "backend": "tensorflow", "keras": "3.15.1", "tensorflow": "2.21.0",
           "python": "3.11.7"}
MODEL = {"num_stacks": 2, "num_features": 128, "num_joints": 14,
         "skeleton": "nyu", "input_size": 96, "dtype_policy": "float32",
         "parameters": 1378292, "flops_per_frame": 720847360}
ROWS = [
    {"part": "saved_model", "measurement": "'crop' signature, 96×96 crop",
     "batch_size": 1, "median_ms": 10.5, "p90_ms": 11.25,
     "frames_per_s": 95.24, "reference": "paper 7.0 ms (1080 Ti)",
     "target": "≤ 9 ms", "target_met": False},
    {"part": "train", "measurement": "augmentation cost, XLA",
     "batch_size": 32, "percent": 1.8, "reference": None, "target": "≤ 5%",
     "target_met": True},
    # A kind of row the table has never seen: rendered from the same keys.
    {"part": "train_step", "measurement": "a | new row", "batch_size": 32,
     "median_ms": 500.0, "frames_per_s": 64.0},
]
REPORT = {"machine": MACHINE, "model": MODEL, "results": ROWS,
          "skipped": [{"part": "openvino", "reason": "not installed"}],
          "notes": []}
README = (f"# Title\n\nIntro | with a pipe.\n\n{table.BEGIN}\nold table\n"
          f"{table.END}\n\n## After\ntext\n")


def test_block_holds_the_machine_and_every_row():
  text = table.update_readme(README, REPORT, "docs/bench.json")
  head, block = text.split(table.BEGIN)
  block, tail = block.split(table.END)
  assert head == "# Title\n\nIntro | with a pipe.\n\n"
  assert tail == "\n\n## After\ntext\n"
  assert "old table" not in block
  assert "`docs/bench.json`" in block
  assert ("Machine: 2026-12-01T10:00:00+00:00: Intel Xeon, 2 cores "
          "(2 usable), 7.7 GiB, accelerators: none") in block
  assert "1,378,292 parameters, 0.721 GFLOPs per frame" in block
  lines = [l for l in block.splitlines() if l.startswith("| ")]
  assert lines[0] == "| " + " | ".join(table.HEADER) + " |"
  assert lines[1:] == [
      "| saved_model | 'crop' signature, 96×96 crop | 1 | 10.50 | 11.25 | "
      "95.2 |  | ≤ 9 ms; paper 7.0 ms (1080 Ti) | miss |",
      "| train | augmentation cost, XLA | 32 |  |  |  | +1.8% | ≤ 5% | pass |",
      "| train_step | a \\| new row | 32 | 500.00 |  | 64.0 |  |  |  |"]
  assert "- openvino: not installed" in block


def test_rendering_again_changes_nothing():
  once = table.update_readme(README, REPORT, "docs/bench.json")
  assert table.update_readme(once, REPORT, "docs/bench.json") == once


@pytest.mark.parametrize("text", [
    "no markers", f"{table.END}\n{table.BEGIN}\n",
    f"{table.BEGIN}\n{table.BEGIN}\n{table.END}\n"])
def test_a_readme_without_one_pair_of_markers_is_refused(text):
  with pytest.raises(ValueError, match="bench:begin"):
    table.update_readme(text, REPORT, "x.json")


def test_the_readme_block_is_the_committed_benchmark_json():
  with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
    readme = f.read()
  with open(os.path.join(REPO, "docs", "bench_cpu.json"),
            encoding="utf-8") as f:
    report = json.load(f)
  assert table.update_readme(readme, report, "docs/bench_cpu.json") == readme


def test_command_rewrites_only_the_block(tmp_path):
  (tmp_path / "docs").mkdir()
  (tmp_path / "docs" / "bench.json").write_text(json.dumps(REPORT))
  (tmp_path / "README.md").write_text(README)
  result = subprocess.run(
      [sys.executable, "-m", "jgr_p2o_tf.bench",
       f"--from_json={tmp_path / 'docs' / 'bench.json'}",
       f"--update_readme={tmp_path / 'README.md'}"],
      cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
  assert result.returncode == 0, result.stderr
  assert (tmp_path / "README.md").read_text() == table.update_readme(
      README, REPORT, "docs/bench.json")
