"""The machine and software a benchmark's figures were taken on."""

import datetime
import importlib.metadata
import os
import platform

import keras


def _cpu_model():
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def _memory_gib():
  try:
    with open("/proc/meminfo", encoding="utf-8") as f:
      for line in f:
        if line.startswith("MemTotal:"):
          return round(int(line.split()[1]) / 2**20, 1)
  except OSError:
    pass
  return None


def _version(*distributions):
  """The installed version of the first of ``distributions`` found."""
  for name in distributions:
    try:
      return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      continue
  return None


def _accelerators():
  """Names of the accelerators the backend sees (empty on a CPU)."""
  if keras.backend.backend() == "jax":
    import jax  # pylint: disable=g-import-not-at-top
    return [f"{d.platform}: {d.device_kind}" for d in jax.devices()
            if d.platform != "cpu"]
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return [tf.config.experimental.get_device_details(d).get("device_name",
                                                           d.name)
          for d in tf.config.list_physical_devices("GPU")]


def machine_info():
  """The machine and software the figures were taken on."""
  return {
      "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
          timespec="seconds"),
      "cpu_model": _cpu_model(),
      "cpu_cores": os.cpu_count(),
      "cpu_cores_usable": len(os.sched_getaffinity(0)),
      "memory_gib": _memory_gib(),
      "load_average": [round(x, 2) for x in os.getloadavg()],
      "accelerators": _accelerators(),
      "backend": keras.backend.backend(),
      "keras": keras.__version__,
      "tensorflow": _version("tensorflow", "tensorflow-cpu"),
      "jax": _version("jax"),
      "onnxruntime": _version("onnxruntime"),
      "openvino": _version("openvino"),
      "tf2onnx": _version("tf2onnx"),
      "python": platform.python_version(),
      "platform": platform.platform(),
  }
