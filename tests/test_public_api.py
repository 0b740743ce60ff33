"""Type hints on the public API: every parameter and return of a public function or method is
annotated (HuggingFace's modeling_bert.py has them on every public signature).

Checked: the callables `gluonbert` exports at the top level, and the public functions and
methods (module level and of public classes, `__init__` and `__call__` included) of the modules
below. `self`, `cls`, Gluon's `F`, `*args` / `**kwargs` and `hybrid_forward` are not checked;
`__init__` needs no return annotation. The modules other work is rewriting (model/, registry,
convert/, train/) are checked too, against NOT_YET_ANNOTATED: that list only shrinks.
"""
import importlib
import inspect
import pkgutil

import gluonbert

PACKAGES = ('gluonbert.data', 'gluonbert.vocab', 'gluonbert.store')
MODULES = ('gluonbert.export', 'gluonbert.quantization', 'gluonbert.precision',
           'gluonbert.summary', 'gluonbert.inference', 'gluonbert.pretrained',
           'gluonbert.pipelines', 'gluonbert.embeddings', 'gluonbert.batched',
           'gluonbert.onnx_export', 'gluonbert.metrics', 'gluonbert.files', 'gluonbert.hardware',
           'gluonbert.errors', 'gluonbert.utils', 'gluonbert.optimizer')
# Checked against NOT_YET_ANNOTATED while their rewrite is under way.
PENDING_PACKAGES = ('gluonbert.model', 'gluonbert.convert', 'gluonbert.train')
PENDING_MODULES = ('gluonbert.registry',)

UNCHECKED_PARAMETERS = {'self', 'cls', 'F'}
CHECKED_DUNDERS = {'__init__', '__call__'}

# 'module:Qualname' of the public functions and methods still without complete hints. Remove an
# entry when its function gets them (test_not_yet_annotated_is_current says which); never add.
NOT_YET_ANNOTATED = {
    # gluonbert.convert.common
    'gluonbert.convert.common:Checkpoint.heads', 'gluonbert.convert.common:Checkpoint.without',
    'gluonbert.convert.common:assign_parameters', 'gluonbert.convert.common:check_vocab_fits',
    'gluonbert.convert.common:checkpoint_with_vocab',
    # gluonbert.convert.crc32c
    'gluonbert.convert.crc32c:crc32c', 'gluonbert.convert.crc32c:masked_crc32c',
    # gluonbert.convert.gluonnlp
    'gluonbert.convert.gluonnlp:convert_gluonnlp_params',
    'gluonbert.convert.gluonnlp:is_gluonnlp_names',
    'gluonbert.convert.gluonnlp:read_params_checkpoint',
    'gluonbert.convert.gluonnlp:split_task_model', 'gluonbert.convert.gluonnlp:to_gluonnlp_params',
    # gluonbert.convert.hf
    'gluonbert.convert.hf:canonical_to_hf', 'gluonbert.convert.hf:check_label_names',
    'gluonbert.convert.hf:config_head_dropout', 'gluonbert.convert.hf:config_labels',
    'gluonbert.convert.hf:config_to_hparams', 'gluonbert.convert.hf:head_dropout_rate',
    'gluonbert.convert.hf:hf_architecture', 'gluonbert.convert.hf:hf_to_canonical',
    'gluonbert.convert.hf:hparams_to_config', 'gluonbert.convert.hf:read_config',
    'gluonbert.convert.hf:read_hf_checkpoint', 'gluonbert.convert.hf:read_hf_state',
    'gluonbert.convert.hf:save_hf_checkpoint', 'gluonbert.convert.hf:tokenizer_config',
    'gluonbert.convert.hf:tokenizer_json_vocab', 'gluonbert.convert.hf:vocab_looks_cased',
    'gluonbert.convert.hf:write_hf_files',
    # gluonbert.convert.layout
    'gluonbert.convert.layout:backbone_of', 'gluonbert.convert.layout:block_from_checkpoint',
    'gluonbert.convert.layout:block_to_canonical', 'gluonbert.convert.layout:canonical_to_block',
    'gluonbert.convert.layout:check_hparams', 'gluonbert.convert.layout:load_into',
    'gluonbert.convert.layout:model_from_checkpoint', 'gluonbert.convert.layout:resolve_heads',
    'gluonbert.convert.layout:task_of',
    # gluonbert.convert.native
    'gluonbert.convert.native:read_native_checkpoint', 'gluonbert.convert.native:read_params',
    'gluonbert.convert.native:save_native_checkpoint', 'gluonbert.convert.native:save_params',
    'gluonbert.convert.native:write_native_files',
    # gluonbert.convert.safetensors_format
    'gluonbert.convert.safetensors_format:read_safetensors',
    'gluonbert.convert.safetensors_format:write_safetensors',
    # gluonbert.convert.tf
    'gluonbert.convert.tf:find_checkpoint_prefix', 'gluonbert.convert.tf:is_training_state',
    'gluonbert.convert.tf:read_tf_checkpoint', 'gluonbert.convert.tf:tf_to_hf_names',
    # gluonbert.convert.tf_bundle
    'gluonbert.convert.tf_bundle:read_index', 'gluonbert.convert.tf_bundle:read_tf_variables',
    # gluonbert.convert
    'gluonbert.convert:detect_format', 'gluonbert.convert:load_checkpoint',
    # gluonbert.model.activations
    'gluonbert.model.activations:GELU.__init__', 'gluonbert.model.activations:make_activation',
    # gluonbert.model.attention
    'gluonbert.model.attention:MultiHeadSelfAttention.__init__',
    'gluonbert.model.attention:interleave_qkv', 'gluonbert.model.attention:split_qkv',
    # gluonbert.model.bert
    'gluonbert.model.bert:BERTModel.__call__', 'gluonbert.model.bert:BERTModel.__init__',
    'gluonbert.model.bert:BERTModel.config', 'gluonbert.model.bert:BERTModel.output_all_encodings',
    'gluonbert.model.bert:BERTModel.output_attention',
    # gluonbert.model.config
    'gluonbert.model.config:validate_config',
    # gluonbert.model.encoder
    'gluonbert.model.encoder:BERTEncoder.__call__', 'gluonbert.model.encoder:BERTEncoder.__init__',
    'gluonbert.model.encoder:BERTEncoder.check_inputs',
    'gluonbert.model.encoder:BERTEncoder.returns_extra_outputs',
    'gluonbert.model.encoder:BERTEncoder.units', 'gluonbert.model.encoder:check_inputs',
    # gluonbert.model.heads
    'gluonbert.model.heads:MLMDecoder.__init__', 'gluonbert.model.heads:NSClassifier.__init__',
    'gluonbert.model.heads:Pooler.__init__',
    # gluonbert.model.layer_norm
    'gluonbert.model.layer_norm:LayerNorm.__init__',
    'gluonbert.model.layer_norm:LayerNorm.uses_kernel',
    'gluonbert.model.layer_norm:PortableExport.export',
    # gluonbert.model.task_heads
    'gluonbert.model.task_heads:BERTClassifier.__init__',
    'gluonbert.model.task_heads:BERTForMultipleChoice.__call__',
    'gluonbert.model.task_heads:BERTForMultipleChoice.__init__',
    'gluonbert.model.task_heads:BERTForQA.__init__',
    'gluonbert.model.task_heads:BERTForTokenClassification.__init__',
    'gluonbert.model.task_heads:BERTRegression.__init__',
    'gluonbert.model.task_heads:mean_over_valid', 'gluonbert.model.task_heads:require_backbone',
    # gluonbert.model.transformer
    'gluonbert.model.transformer:TransformerLayer.__init__',
    # gluonbert.registry
    'gluonbert.registry:get_hparams', 'gluonbert.registry:get_model',
    'gluonbert.registry:list_models', 'gluonbert.registry:register_model',
    # gluonbert.train.averaging
    'gluonbert.train.averaging:WeightAverage.__init__',
    'gluonbert.train.averaging:WeightAverage.applied',
    'gluonbert.train.averaging:WeightAverage.copy_to_net',
    'gluonbert.train.averaging:WeightAverage.load', 'gluonbert.train.averaging:WeightAverage.rate',
    'gluonbert.train.averaging:WeightAverage.save',
    'gluonbert.train.averaging:WeightAverage.update', 'gluonbert.train.averaging:check_ema_decay',
    # gluonbert.train.checkpoint
    'gluonbert.train.checkpoint:CheckpointManager.__init__',
    'gluonbert.train.checkpoint:CheckpointManager.latest',
    'gluonbert.train.checkpoint:CheckpointManager.load',
    'gluonbert.train.checkpoint:CheckpointManager.remove_partial',
    'gluonbert.train.checkpoint:CheckpointManager.save',
    'gluonbert.train.checkpoint:check_model_record', 'gluonbert.train.checkpoint:describe_model',
    'gluonbert.train.checkpoint:load_parameters_file', 'gluonbert.train.checkpoint:save_best',
    # gluonbert.train.classification
    'gluonbert.train.classification:aggregate_windows', 'gluonbert.train.classification:evaluate',
    'gluonbert.train.classification:make_features', 'gluonbert.train.classification:predict',
    'gluonbert.train.classification:task_loss', 'gluonbert.train.classification:training_batches',
    # gluonbert.train.clipping
    'gluonbert.train.clipping:clip_factor', 'gluonbert.train.clipping:global_norm',
    # gluonbert.train.curves
    'gluonbert.train.curves:save_curves',
    # gluonbert.train.distributed
    'gluonbert.train.distributed:HorovodBackend.allreduce',
    'gluonbert.train.distributed:HorovodBackend.check_contexts',
    'gluonbert.train.distributed:HorovodBackend.describe',
    'gluonbert.train.distributed:HorovodBackend.make_trainer',
    'gluonbert.train.distributed:KVStoreBackend.__init__',
    'gluonbert.train.distributed:KVStoreBackend.allreduce',
    'gluonbert.train.distributed:KVStoreBackend.check_contexts',
    'gluonbert.train.distributed:KVStoreBackend.describe',
    'gluonbert.train.distributed:KVStoreBackend.make_trainer',
    'gluonbert.train.distributed:LocalBackend.__init__',
    'gluonbert.train.distributed:LocalBackend.allreduce',
    'gluonbert.train.distributed:LocalBackend.check_contexts',
    'gluonbert.train.distributed:LocalBackend.describe',
    'gluonbert.train.distributed:LocalBackend.make_trainer',
    'gluonbert.train.distributed:allreduce_numpy', 'gluonbert.train.distributed:get_backend',
    'gluonbert.train.distributed:shard_batches',
    # gluonbert.train.loop
    'gluonbert.train.loop:TrainingLoop.__init__', 'gluonbert.train.loop:TrainingLoop.fit',
    'gluonbert.train.loop:check_finite_outputs',
    # gluonbert.train.losses
    'gluonbert.train.losses:WeightedSoftmaxCELoss.__call__',
    'gluonbert.train.losses:WeightedSoftmaxCELoss.__init__',
    'gluonbert.train.losses:balanced_class_weights',
    # gluonbert.train.mixed_precision
    'gluonbert.train.mixed_precision:DynamicLossScale.__init__',
    'gluonbert.train.mixed_precision:DynamicLossScale.load_state_dict',
    'gluonbert.train.mixed_precision:DynamicLossScale.state_dict',
    'gluonbert.train.mixed_precision:DynamicLossScale.update',
    'gluonbert.train.mixed_precision:LowPrecisionForward.__call__',
    'gluonbert.train.mixed_precision:LowPrecisionForward.__init__',
    'gluonbert.train.mixed_precision:check_mixed_precision',
    'gluonbert.train.mixed_precision:convert_graph',
    # gluonbert.train.optimizer
    'gluonbert.train.optimizer:AdamW.__init__', 'gluonbert.train.optimizer:AdamW.create_state',
    'gluonbert.train.optimizer:AdamW.create_state_multi_precision',
    'gluonbert.train.optimizer:AdamW.update',
    'gluonbert.train.optimizer:AdamW.update_multi_precision',
    'gluonbert.train.optimizer:BERTAdam.__init__',
    'gluonbert.train.optimizer:BERTAdam.create_state_multi_precision',
    'gluonbert.train.optimizer:BERTAdam.update',
    'gluonbert.train.optimizer:BERTAdam.update_multi_precision',
    'gluonbert.train.optimizer:exclude_from_weight_decay',
    # gluonbert.train.pretraining
    'gluonbert.train.pretraining:batch_examples', 'gluonbert.train.pretraining:evaluate',
    'gluonbert.train.pretraining:masked_lm_loss',
    'gluonbert.train.pretraining:mlm_accuracy_counts',
    'gluonbert.train.pretraining:pretraining_loss', 'gluonbert.train.pretraining:training_batches',
    'gluonbert.train.pretraining:with_pretraining_heads',
    # gluonbert.train.schedule
    'gluonbert.train.schedule:LinearWarmupDecay.__call__',
    'gluonbert.train.schedule:LinearWarmupDecay.__init__',
    # gluonbert.train.script_args
    'gluonbert.train.script_args:add_model_arguments',
    'gluonbert.train.script_args:add_training_arguments',
    'gluonbert.train.script_args:check_dtype', 'gluonbert.train.script_args:check_launched_worker',
    'gluonbert.train.script_args:check_weights_source', 'gluonbert.train.script_args:contexts',
    'gluonbert.train.script_args:describe_run', 'gluonbert.train.script_args:parse_script_args',
    'gluonbert.train.script_args:require_rows', 'gluonbert.train.script_args:show_progress',
    'gluonbert.train.script_args:start_worker', 'gluonbert.train.script_args:train_config',
    # gluonbert.train.squad
    'gluonbert.train.squad:batch_inputs', 'gluonbert.train.squad:evaluate',
    'gluonbert.train.squad:predict', 'gluonbert.train.squad:predict_logits',
    'gluonbert.train.squad:span_loss', 'gluonbert.train.squad:training_batches',
}


def _modules(packages, modules):
    """The named modules and every module of the named packages, imported."""
    names = list(modules)
    for package in packages:
        names.append(package)
        path = importlib.import_module(package).__path__
        names += [info.name for info in pkgutil.walk_packages(path, package + '.')]
    return [importlib.import_module(name) for name in sorted(set(names))]


def _function(member):
    """The plain function behind a method, static/class method, property or decorator (or
    None when `member` is no function)."""
    if isinstance(member, (staticmethod, classmethod)):
        member = member.__func__
    elif isinstance(member, property):
        member = member.fget
    if callable(member):
        member = inspect.unwrap(member)
    return member if inspect.isfunction(member) else None


def _class_functions(cls, module_name):
    """(qualname, function) of the checked methods a class defines itself."""
    for attr, member in sorted(vars(cls).items()):
        if (attr.startswith('_') and attr not in CHECKED_DUNDERS) or attr == 'hybrid_forward':
            continue
        function = _function(member)
        # `__module__` drops what the class got from elsewhere (typing.Protocol's __init__)
        if function is not None and function.__module__ == module_name:
            yield f'{cls.__qualname__}.{attr}', function


def _public_functions(module):
    """('module:Qualname', function) of the public functions and methods `module` defines."""
    for name, obj in sorted(vars(module).items()):
        if name.startswith('_') or getattr(obj, '__module__', None) != module.__name__:
            continue
        if inspect.isclass(obj):
            for qualname, function in _class_functions(obj, module.__name__):
                yield f'{module.__name__}:{qualname}', function
        else:
            function = _function(obj)
            if function is not None:
                yield f'{module.__name__}:{name}', function


def _exported_functions():
    """('module:Qualname', function) of the callables gluonbert's top level exports."""
    for name in sorted(dir(gluonbert)):
        obj = getattr(gluonbert, name)
        if name.startswith('_') or inspect.ismodule(obj) or not callable(obj):
            continue
        if inspect.isclass(obj):
            for qualname, function in _class_functions(obj, obj.__module__):
                yield f'{obj.__module__}:{qualname}', function
        else:
            function = _function(obj)
            if function is not None:
                yield f'{function.__module__}:{function.__qualname__}', function


def _missing(qualname, function):
    """Names of the unannotated parameters of `function`, and 'return' if its return is."""
    signature = inspect.signature(function)
    missing = [p.name for p in signature.parameters.values()
               if p.name not in UNCHECKED_PARAMETERS
               and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               and p.annotation is p.empty]
    if signature.return_annotation is signature.empty and not qualname.endswith('.__init__'):
        missing.append('return')
    return missing


def _unannotated(functions):
    """{'module:Qualname': [missing annotations]} of the functions that lack some."""
    found = {}
    for qualname, function in functions:
        missing = _missing(qualname, function)
        if missing:
            found[qualname] = missing
    return found


def _report(found):
    return '\n  '.join(f'{name}: {", ".join(missing)}' for name, missing in sorted(found.items()))


def _pending_functions():
    for module in _modules(PENDING_PACKAGES, PENDING_MODULES):
        yield from _public_functions(module)


def test_the_public_api_is_annotated():
    found = _unannotated(
        [item for module in _modules(PACKAGES, MODULES) for item in _public_functions(module)])
    assert not found, 'public functions without complete type hints:\n  ' + _report(found)


def test_gluonbert_exports_are_annotated():
    found = _unannotated(_exported_functions())
    found = {name: missing for name, missing in found.items() if name not in NOT_YET_ANNOTATED}
    assert not found, 'exported functions without complete type hints:\n  ' + _report(found)


def test_pending_modules_get_no_new_unannotated_functions():
    found = _unannotated(_pending_functions())
    new = {name: missing for name, missing in found.items() if name not in NOT_YET_ANNOTATED}
    assert not new, ('functions without complete type hints (annotate them; NOT_YET_ANNOTATED '
                     'only shrinks):\n  ' + _report(new))


def test_not_yet_annotated_is_current():
    found = _unannotated(list(_pending_functions()) + list(_exported_functions()))
    done = sorted(NOT_YET_ANNOTATED - set(found))
    assert not done, ('annotated (or gone) now: remove them from NOT_YET_ANNOTATED in '
                      'tests/test_public_api.py:\n  ' + '\n  '.join(done))


def test_the_checker_sees_what_is_missing():
    """The checks above could pass on anything if _missing saw nothing."""
    def bare(self, a, b: int, *args, F=None, **kwargs):
        return a

    def full(a: int, *args, **kwargs) -> int:
        return a

    class Holder:
        def __init__(self, x: int):
            self.x = x

        @property
        def value(self):
            return self.x

        @staticmethod
        def make(y):
            return y

        def _private(self, z):
            return z

    Holder.__module__ = __name__
    assert _missing('bare', bare) == ['a', 'return']
    assert _missing('full', full) == []
    found = _unannotated(_class_functions(Holder, __name__))
    assert found == {f'{Holder.__qualname__}.make': ['y', 'return'],
                     f'{Holder.__qualname__}.value': ['return']}
