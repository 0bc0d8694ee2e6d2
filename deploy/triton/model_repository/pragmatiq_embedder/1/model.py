"""pragmatiq_embedder: records_json -> embeddings [n_users, d] and user_ids, in one python model.

Needs `pip install "pragmatiq[serve]"` in the Triton server's Python. The trained run is read
from $PRAGMATIQ_RUN (default: the `run/` directory beside this file). See
pragmatiq.triton_models.embedder_model.
"""

from pragmatiq.triton_models.embedder_model import TritonPythonModel  # noqa: F401
