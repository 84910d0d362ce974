"""The model zoo: registry plus one file per family. Importing this package imports no torch."""

from edgecnn.models.registry import ModelInfo, register_model
from edgecnn.models.zoo import create_model, get_model_info, list_models

__all__ = ["ModelInfo", "create_model", "get_model_info", "list_models", "register_model"]
