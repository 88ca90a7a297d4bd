import torch
from torch import nn

from compressbench.comparison.weights import count_params, onnx_weight_count
from compressbench.runtimes.onnx import export_onnx_bytes

from .standins import FRAME_SIZE, small_teacher
from .test_measures import BATCHNORM_PARAMS, SMALL_PARAMS


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
    from compressbench.compression import CompressionContext, compress, get_method

    options = get_method("quantize").resolve({"weights_only": True})
    context = CompressionContext(input_shape=(1, 3, FRAME_SIZE, FRAME_SIZE), show_progress=False)
    variant = compress(small_teacher(), ["quantize"], [options], context)[-1]
    assert sum(p.numel() for p in variant.module.parameters()) < SMALL_PARAMS
    assert count_params(variant.module) == SMALL_PARAMS
