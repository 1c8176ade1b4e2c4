"""What reaches the user's terminal: no TensorFlow or absl C++ logging."""

import configparser
import io
import os
import re
import subprocess
import sys

from jgr_p2o_tf import progress
from jgr_p2o_tf import quiet_logs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A line of absl's C++ logging (TensorFlow's), or its start-up notices.
_CPP_LOG_LINE = re.compile(
    r"^[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ |absl::InitializeLog|oneDNN|"
    r"cpu_feature_guard|rebuild TensorFlow", re.MULTILINE)

# Runs a console script's entry point as the installed script does, then
# says on stderr whether TensorFlow was imported.
_RUN_ENTRY_POINT = r"""
import importlib, sys
module, function = sys.argv[1].split(":")
sys.argv = [sys.argv[1]] + sys.argv[2:]
try:
  getattr(importlib.import_module(module), function)()
finally:
  print("tensorflow imported:", "tensorflow" in sys.modules, file=sys.stderr)
"""


def _console_scripts():
  config = configparser.ConfigParser()
  config.read(os.path.join(REPO, "setup.cfg"))
  entries = config["options.entry_points"]["console_scripts"].strip()
  return dict(line.split(" = ") for line in entries.splitlines())


def _run(entry_point, *args):
  # The user's environment: no TF_CPP_MIN_LOG_LEVEL of their own.
  env = {k: v for k, v in os.environ.items()
         if k != quiet_logs.LEVEL_VARIABLE}
  return subprocess.run(
      [sys.executable, "-c", _RUN_ENTRY_POINT, entry_point, *args], cwd=REPO,
      capture_output=True, text=True, timeout=120, env=env, check=False)


def test_every_command_answers_help_quietly_without_tensorflow():
  scripts = _console_scripts()
  assert "jgr-p2o-prepare" in scripts and len(scripts) >= 8
  for name, entry_point in scripts.items():
    result = _run(entry_point, "--help")
    # The command's docstring and its own flags, as under python -m.
    assert "\nflags:\n" in result.stdout and "--" in result.stdout, (
        name, result.stdout[-2000:], result.stderr)
    output = result.stdout + result.stderr
    assert not _CPP_LOG_LINE.search(output), (name, output[-2000:])
    assert "tensorflow imported: False" in result.stderr, name
    if name == "jgr-p2o-evaluate":
      # The docstring's shell line continuations survive into --help.
      assert "--dataset=nyu \\\n    --labels=" in result.stdout


def test_a_failing_command_that_loads_tensorflow_prints_one_line(tmp_path):
  result = _run(_console_scripts()["jgr-p2o-prepare"], "--dataset=icvl",
                f"--data_dir={tmp_path / 'missing'}", "--split=train",
                f"--out_dir={tmp_path / 'out'}")
  assert result.returncode == 2, result.stderr
  assert "tensorflow imported: True" in result.stderr
  lines = result.stderr.strip().splitlines()
  assert lines[0].startswith("error:") and "missing" in lines[0], lines
  assert len(lines) == 2, result.stderr
  assert not _CPP_LOG_LINE.search(result.stdout + result.stderr)


def test_filter_keeps_errors_and_what_is_not_absl_logging():
  text = (b"WARNING: All log messages before absl::InitializeLog() is called"
          b" are written to STDERR\n"
          b"I0000 00:00:1796149559.053230   15848 port.cc:153] oneDNN custom "
          b"operations are on.\n"
          b"I0000 00:00:1796149559.093460   15848 cpu_feature_guard.cc:227] "
          b"This TensorFlow binary is optimized\n"
          b"To enable the following instructions: AVX2, rebuild TensorFlow\n"
          b"W0000 00:00:1796149559.1   15848 x.cc:1] a warning\n"
          b"E0000 00:00:1796149559.2   15848 x.cc:2] an error\n"
          b"a line of Python\n")
  assert quiet_logs.filter_log(text, 2) == (
      b"E0000 00:00:1796149559.2   15848 x.cc:2] an error\n"
      b"a line of Python\n")
  assert quiet_logs.filter_log(text, 1).startswith(b"W0000")
  assert quiet_logs.filter_log(text, 0) == text


class _Clock:
  def __init__(self):
    self.now = 0.0

  def __call__(self):
    return self.now


def test_progress_off_a_terminal_is_a_line_per_interval_and_one_at_the_end():
  stream, clock = io.StringIO(), _Clock()
  with progress.LineProgress(1000, "epoch 1/2", "step", interval_s=30.0,
                             stream=stream, clock=clock) as bar:
    for _ in range(1000):
      clock.now += 0.1  # 100 s in all
      bar.set_postfix(loss="0.5000", refresh=False)
      bar.update(1)
  lines = stream.getvalue().splitlines()
  # At 30, 60 and 90 s, and at the end.
  assert len(lines) == 4, lines
  assert lines[-1].startswith("epoch 1/2: 1000/1000 step (100%), 10.00 step/s")
  assert lines[-1].endswith("100 s, loss 0.5000")
  silent = io.StringIO()
  progress.LineProgress(5, "x", "step", disable=True, stream=silent).close()
  assert not silent.getvalue()
