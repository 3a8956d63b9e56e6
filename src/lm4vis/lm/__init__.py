"""The language-model side: one typed config and one layer implementation for every family."""

from .config import SUPPORTED_FAMILIES, LMConfig, tiny_config
from .layers import LMAttention, LMLayer, LMMLP, LMStack, Norm, random_lm

__all__ = ["LMConfig", "SUPPORTED_FAMILIES", "tiny_config", "LMStack", "LMLayer", "LMAttention",
           "LMMLP", "Norm", "random_lm"]
