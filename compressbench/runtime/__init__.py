"""Running models outside eager PyTorch: ONNX export and ONNX Runtime sessions."""

from compressbench.runtime.onnx import (
    DETECTOR_OUTPUTS,
    OnnxModule,
    OnnxRunner,
    export_onnx,
    export_onnx_bytes,
    make_session,
)

__all__ = ["DETECTOR_OUTPUTS", "OnnxModule", "OnnxRunner", "export_onnx", "export_onnx_bytes", "make_session"]
