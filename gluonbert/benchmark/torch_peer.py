"""HF transformers on torch as a peer: fp32, bf16 autocast, its fine-tuning step, and the ONNX
file the deployment runtimes read."""
import contextlib
import os
import warnings

import numpy as np

from ..convert.hf import save_hf_checkpoint
from .inputs import padding_mask

ONNX_INPUTS = ('input_ids', 'attention_mask', 'token_type_ids')
ONNX_OUTPUTS = ('last_hidden_state', 'pooler_output')
ONNX_OPSET = 17


def setup_torch(threads: int) -> None:
    """torch on `threads` threads; transformers without progress bars and warnings."""
    import torch
    import transformers
    torch.set_num_threads(threads)
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


def hf_inputs(inputs: tuple) -> dict:
    """numpy inputs -> transformers keyword arguments, the padding mask from valid_length."""
    import torch
    ids, types, _ = inputs
    return dict(input_ids=torch.from_numpy(ids.astype(np.int64)),
                token_type_ids=torch.from_numpy(types.astype(np.int64)),
                attention_mask=torch.from_numpy(padding_mask(inputs)))


def hf_runner(model, feeds: dict, bf16: bool = False):
    """A forward pass of a transformers BertModel (`bf16`: under torch.autocast bfloat16);
    run(fetch=True) returns float32 (sequence (batch, seq_len, units), pooled (batch, units))."""
    import torch

    def run(fetch=False):
        autocast = (torch.autocast('cpu', dtype=torch.bfloat16) if bf16
                    else contextlib.nullcontext())
        with torch.inference_mode(), autocast:
            output = model(**feeds)
        if not fetch:
            return None
        return [output.last_hidden_state.float().numpy(), output.pooler_output.float().numpy()]
    return run


def hf_model(block, vocab, folder: str, class_name: str):
    """Write `block` as a HuggingFace folder with gluonbert's converter, load it as
    transformers.`class_name` with sdpa attention."""
    import transformers
    path = os.path.join(folder, class_name)
    save_hf_checkpoint(block, vocab, path)
    return getattr(transformers, class_name).from_pretrained(
        path, attn_implementation='sdpa', local_files_only=True)


def hf_from_config(config: dict, class_name: str):
    """A transformers model with its own random weights from a BertConfig dict (memory probes)."""
    import transformers
    extra = dict(num_labels=2) if class_name != 'BertModel' else {}
    return getattr(transformers, class_name)(
        transformers.BertConfig(attn_implementation='sdpa', **dict(config, **extra)))


def hf_train_step(model, feeds: dict, labels):
    """One torch step of a BertForSequenceClassification: cross-entropy, backward, AdamW."""
    import torch
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5, eps=1e-6, weight_decay=0.01)
    model.train()

    def step():
        loss = torch.nn.functional.cross_entropy(model(**feeds).logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step


def export_onnx(model, inputs: tuple, path: str) -> str:
    """torch.onnx.export of a transformers BertModel to `path`, batch and sequence length
    dynamic; inputs ONNX_INPUTS (int64, (batch, seq_len)), outputs ONNX_OUTPUTS -> `path`."""
    import torch

    class Outputs(torch.nn.Module):
        """The model with positional inputs and a (sequence, pooled) tuple out: the TorchScript
        exporter cannot trace transformers' keyword-only calls."""

        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            """(batch, seq_len) int64 x3 -> ((batch, seq_len, units), (batch, units))."""
            output = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                               token_type_ids=token_type_ids)
            return output.last_hidden_state, output.pooler_output

    feeds = hf_inputs(inputs)
    dynamic = {name: {0: 'batch', 1: 'seq_len'} for name in ONNX_INPUTS + ONNX_OUTPUTS[:1]}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation and trace notes
        warnings.simplefilter('ignore')
        # dynamo=False: the torch.export-based exporter needs onnxscript, not a bench dependency
        torch.onnx.export(Outputs(model).eval(), tuple(feeds[name] for name in ONNX_INPUTS),
                          path, input_names=list(ONNX_INPUTS), output_names=list(ONNX_OUTPUTS),
                          dynamic_axes=dict(dynamic, pooler_output={0: 'batch'}),
                          opset_version=ONNX_OPSET, dynamo=False)
    return path
