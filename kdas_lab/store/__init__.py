"""The run store: what made a model (its fingerprint) and how runs are kept."""
from kdas_lab.store.fingerprint import RUNTIME_FIELDS, Fingerprint, data_key, short, state_dict_sha256

__all__ = ["Fingerprint", "RUNTIME_FIELDS", "data_key", "short", "state_dict_sha256"]
