"""The layers and blocks of JGR-P2O: keras.ops only, any Keras backend."""

from jgr_p2o_tf.layers.attention_head import attention_voting_maps
from jgr_p2o_tf.layers.differentiable_heatmap import DifferentiableHeatmap
from jgr_p2o_tf.layers.hourglass import hourglass
from jgr_p2o_tf.layers.initializers import small_kernel_initializer
from jgr_p2o_tf.layers.joint_graph_reasoning import GRAPHS
from jgr_p2o_tf.layers.joint_graph_reasoning import JointGraphReasoning
from jgr_p2o_tf.layers.output_grid import OUTPUT_STRIDE
from jgr_p2o_tf.layers.output_grid import pixel_uv
from jgr_p2o_tf.layers.output_grid import pixel_uvz
from jgr_p2o_tf.layers.pixel_to_offset import PixelToOffset
from jgr_p2o_tf.layers.pixel_to_offset import offsets_to_joints
from jgr_p2o_tf.layers.residual import batch_normalization
from jgr_p2o_tf.layers.residual import conv_bn
from jgr_p2o_tf.layers.residual import residual_block
from jgr_p2o_tf.layers.spatial_softmax import SpatialSoftmax
