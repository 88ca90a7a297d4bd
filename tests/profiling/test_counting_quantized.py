"""Counts that stay honest for 8-bit variants: packed weights, ONNX graphs, codebooks; size and peak memory."""

import torch
from torch import nn

from compressbench.profiling.counting import count_macs, count_params, onnx_weight_count, peak_memory_mb, size_mb
from compressbench.runtimes.onnx import export_onnx_bytes

from ..standins import BATCHNORM_PARAMS, FRAME_SIZE, SMALL_PARAMS, small_teacher


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
    size = size_mb(linear)
    assert 4.004 <= size <= 4.004 + 2 * 1024 / 1e6 + 0.001
    # 8-bit weights: the quantized model's file is smaller than the float one's
    assert size_mb(int8_variant.module) < 0.6 * size_mb(small_teacher())


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


class ConvThenResize(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)  # 8*3*9 + 8 = 224 weights and biases
        self.up = nn.Upsample(scale_factor=2)  # its scales become an initializer that is not a weight

    def forward(self, x):
        return self.up(self.conv(x))


def test_onnx_weights_are_the_initializers_convolutions_take():
    graph = export_onnx_bytes(ConvThenResize().eval(), torch.zeros(1, 3, 8, 8))
    assert onnx_weight_count(graph) == 224


def test_onnxruntime_int8_part_counts_its_quantized_weights(ort_variant):
    # the predictor's convolutions are inside the ONNX graph, int8, with BatchNorm folded in
    assert sum(p.numel() for p in ort_variant.module.predictor.parameters()) == 0
    assert count_params(ort_variant.module) == SMALL_PARAMS - BATCHNORM_PARAMS


def test_eight_bit_weight_buffers_count_one_parameter_per_element():
    class CodebookLinear(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("indices", torch.zeros(20, 30, dtype=torch.uint8))  # 600 weights
            self.register_buffer("codebook", torch.zeros(256))  # metadata, not weights
            self.bias = nn.Parameter(torch.zeros(20))

    assert count_params(CodebookLinear()) == 620
    assert count_params(small_teacher()) == SMALL_PARAMS  # float models: exactly parameters()


def test_weight_only_codebook_variant_keeps_every_weight():
    from compressbench.compression import CompressionContext, get_method
    from compressbench.provenance import derive

    options = get_method("quantize").resolve({"weights_only": True})
    context = CompressionContext(input_shape=(1, 3, FRAME_SIZE, FRAME_SIZE), show_progress=False)
    variant = derive(small_teacher(), ["quantize"], [options], context)[-1]
    assert sum(p.numel() for p in variant.module.parameters()) < SMALL_PARAMS
    assert count_params(variant.module) == SMALL_PARAMS
