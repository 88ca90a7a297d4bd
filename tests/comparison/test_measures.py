import torch
from torch import nn

from compressbench.comparison.measures import count_macs, peak_memory_mb, serialized_size_mb
from compressbench.comparison.weights import count_params

from .standins import FRAME_SIZE, small_teacher

# Reduced teacher (block_expansion 8, max_features 64, 3 blocks, 10 keypoints), by hand:
# down convs 3->16, 16->32, 32->64 (3x3 + bias): 448 + 4,640 + 18,496; their BatchNorms 2*(16+32+64) = 224
# up convs 64->32, 64->16, 32->8: 18,464 + 9,232 + 2,312; their BatchNorms 2*(32+16+8) = 112
# heads on 8+3 = 11 channels, 7x7: kp 11*10*49+10 = 5,400; jacobian 11*40*49+40 = 21,600
SMALL_PARAMS = 448 + 4640 + 18496 + 224 + 18464 + 9232 + 2312 + 112 + 5400 + 21600
BATCHNORM_PARAMS = 224 + 112


def test_float_params_are_the_parameter_count():
    assert SMALL_PARAMS == 80_928
    assert count_params(small_teacher()) == SMALL_PARAMS


def test_quantized_params_count_packed_weights_without_folded_batchnorm(int8_variant):
    # the packed int8 convolutions are invisible to parameters()
    assert sum(p.numel() for p in int8_variant.module.parameters()) < SMALL_PARAMS // 10
    # weights and biases are all still there, minus the BatchNorm affine parameters folded into the convs
    assert count_params(int8_variant.module) == SMALL_PARAMS - BATCHNORM_PARAMS


def test_serialized_size_is_the_tensor_bytes_plus_a_small_container_overhead(int8_variant):
    linear = nn.Linear(1000, 1000)  # 1,001,000 float32 = 4,004,000 bytes in two tensors
    size = serialized_size_mb(linear)
    assert 4.004 <= size <= 4.004 + 2 * 1024 / 1e6 + 0.001
    # 8-bit weights: the quantized model's file is smaller than the float one's
    assert serialized_size_mb(int8_variant.module) < 0.6 * serialized_size_mb(small_teacher())


def test_macs_of_a_convolution_and_none_for_quantized_ops(int8_variant):
    conv = nn.Conv2d(3, 8, 3, padding=1)
    assert count_macs(conv, torch.zeros(1, 3, 10, 10)) == 10 * 10 * 8 * 3 * 9
    assert count_macs(int8_variant.module, torch.zeros(1, 3, FRAME_SIZE, FRAME_SIZE)) is None


def test_peak_memory_is_the_maximum_of_live_allocations():
    def run():
        a = torch.empty(1_000_000, dtype=torch.uint8)
        b = torch.empty(2_000_000, dtype=torch.uint8)  # 3 MB live here
        del a
        c = torch.empty(500_000, dtype=torch.uint8)  # 2.5 MB live
        return b, c

    assert peak_memory_mb(run) == 3.0
