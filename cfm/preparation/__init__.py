"""Model preparation: the conversion utility.

The pure-Python part (no Django import) turns a downloaded model folder into
one the platform accepts: `.bin` weights to safetensors, a `tokenizer.json`,
a `tsfm_config.json`, a fixed safetensors metadata header, the Llama 3.1
`rope_scaling` edit; then stores it with a checksum manifest.

Anything that unpickles or needs torch/transformers runs in a separate,
resource-limited process (`sandbox.py` starts `worker.py`): a hostile pickle
is refused by torch's weights-only loader there, and a crash or a memory
blow-up ends that process, never the Celery worker.

The Django glue (job row, task, services, views) lives beside it in this
app: models.py, services.py, tasks.py, views.py.
"""
from .errors import PrepareError

__all__ = ["PrepareError"]
