"""Keras' OpenVINO backend runs inference only: see `inference_only`."""

from keras_sugar.native import inference_only

DIFFERENTIATES = inference_only.DIFFERENTIATES
FUSED_BACKWARD = inference_only.FUSED_BACKWARD
relu_with_derivative = inference_only.relu_with_derivative
relu_saving_derivative = inference_only.relu_saving_derivative
