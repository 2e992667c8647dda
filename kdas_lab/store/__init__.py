"""The run store: what made a model (its fingerprint) and how run folders are kept."""
from kdas_lab.store.fingerprint import Fingerprint, data_key, resume_refusal, short, state_dict_sha256
from kdas_lab.store.runs import read_fingerprint, recorded_differences, replace_dir, reusable, set_aside, staging_dir

__all__ = ["Fingerprint", "data_key", "read_fingerprint", "recorded_differences", "replace_dir",
           "resume_refusal", "reusable", "set_aside", "short", "staging_dir", "state_dict_sha256"]
