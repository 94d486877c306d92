"""First floor: models as files, never code.

``checkpoints`` (our safetensors + JSON, atomic writes, listing a folder), ``foreign`` (the
``latentlab-onnx`` folder spec), ``onnx_model`` (an ONNX encoder/decoder pair behind the model
protocol, run by ONNX Runtime) and ``export`` (our checkpoints to that folder, and importing one).

May import: ``core.models`` and ``core.data``.
"""

MAY_IMPORT = ("models", "data")
