# Quantized activations (the ActNN / GACT idea): each fine-tuned convolution
# stores its input as 8-bit codes per group of 256 elements, rounded
# stochastically; the weight gradient is formed from the dequantized input.
_base_ = './upernet_swin-t_vanilla-l5_shapes-target-128x128.py'
custom_hooks = [
    dict(type='CompressConvHook', method='quantized', bits=8, num_layers=5),
    dict(type='ActivationMemoryHook')
]
