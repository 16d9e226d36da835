"""Export of trained models to other runtimes.

- :mod:`kinepose.export.onnx`: ONNX graphs of every model family (:func:`export_onnx`), an onnxruntime
  parity check (:func:`check_onnx`) and inference from an exported file (:func:`predict_onnx`).

``onnx`` and ``onnxruntime`` are optional (``pip install 'kinepose[export]'``); they are imported only when
an ONNX function is called, so importing this package never needs them.
"""

from kinepose.export.onnx import check_onnx, export_onnx, predict_onnx, read_onnx_metadata

__all__ = ["check_onnx", "export_onnx", "predict_onnx", "read_onnx_metadata"]
