"""The random batches every variant is fed: the same token ids for all of them."""
import numpy as np

TRAIN_SHAPE = (8, 128)  # (batch, seq_len) of the fine-tuning step and the memory probes


def make_inputs(vocab_size: int, batch: int, seq_len: int, seed: int) -> tuple:
    """Random (input_ids, token_types, valid_length) int32 numpy arrays, (batch, seq_len) twice
    and (batch,): 2 segments, no padding."""
    rng = np.random.RandomState(seed)
    ids = rng.randint(1, vocab_size, size=(batch, seq_len)).astype(np.int32)
    types = np.zeros_like(ids)
    types[:, seq_len // 2:] = 1
    return ids, types, np.full((batch,), seq_len, dtype=np.int32)


def train_batch(vocab_size: int, seed: int = 0) -> tuple:
    """(numpy inputs, int labels (batch,)) of the fine-tuning shape."""
    inputs = make_inputs(vocab_size, *TRAIN_SHAPE, seed=seed)
    return inputs, np.random.RandomState(seed).randint(0, 2, size=TRAIN_SHAPE[0])


def padding_mask(inputs: tuple) -> np.ndarray:
    """(batch, seq_len) int64 attention mask, 1 inside each valid length, from numpy inputs."""
    ids, _, lengths = inputs
    return (np.arange(ids.shape[1])[None, :] < lengths[:, None]).astype(np.int64)
