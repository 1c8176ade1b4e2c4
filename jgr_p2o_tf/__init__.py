"""JGR-P2O (Fang et al., ECCV 2020) in TensorFlow 2 / Keras 3."""
