"""How fast the network runs on each runtime, training and the input pipeline.

``run_benchmark`` (``report``) is what ``python -m jgr_p2o_tf.bench`` calls.
It measures, on a randomly initialised model of the NYU layout (14 joints,
96×96 crops):

  * "model": the Keras model called as users call it,
    ``model(x, training=False)`` (eager), and, under TensorFlow, the same call
    in a ``tf.function`` without XLA;
  * "xla": the same call compiled: ``tf.function(jit_compile=True)``, or
    under JAX ``jax.jit`` of ``model.stateless_call``;
  * "saved_model": the model exported by ``exporter.export_saved_model`` and
    loaded back: its "crop" signature and its full-frame
    "serving_default" signature, whose crop (640×480 NYU frame) runs in the
    graph;
  * "onnxruntime" and "openvino": the model exported by
    ``onnx_export.export_onnx`` and run by ``inference.Predictor``: its crop
    and full-frame graphs in float32, the crop graph in int8, and int8's
    accuracy change in mm (``onnx_speed``);
  * "train": the whole train step (``train_step.step_runner``: keras.ops
    augmentation, forward, backward, L2 penalty, Adam update) on each
    backend of ``Settings.train_backends`` (the current one in this
    process, the other in a child process), in float32 and mixed bfloat16,
    at each training batch size, under TensorFlow with XLA on and off;
    augmentation off too at the first precision and batch size; and JAX's
    step time over TensorFlow's fastest at the same batch and precision;
  * "input": batches per second of ``input_pipeline.make_dataset`` alone.

Inference rows give the median and 90th percentile wall time of one call at
each batch size and frames/s = batch size / median. Inputs are NumPy arrays
built once, so each call includes handing them to the backend, as a server
does. A call counts as finished when its last output is on the host.

"input" reads synthetic NYU-layout records that
``data_preparation.prepare_synthetic_split`` renders and prepares in a
temporary folder; "train" steps on one batch of random crops in memory.
Under JAX, what needs TensorFlow ("saved_model", the ONNX parts, "input") is
skipped with a note in the report, and with ``train_backends=("jax",)``
TensorFlow is never imported (``benchmarks/accelerator.sh``).

FLOPs are counted analytically from the Keras model's layers
(``jgr_p2o_tf.flops``).

Modules: ``workload`` (the network, its inputs, ``Settings``), ``timing``
(wall times, result rows, targets), ``machine`` (the machine and software),
``inference_speed``, ``onnx_speed`` and ``training_speed`` (the parts),
``report`` (the whole run and its table).
"""
