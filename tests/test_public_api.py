"""Type hints on the public API: every parameter and return of a public function or method is
annotated (HuggingFace's modeling_bert.py has them on every public signature).

Checked: the callables `gluonbert` exports at the top level, and the public functions and
methods (module level and of public classes, `__init__` and `__call__` included) of the modules
below. `self`, `cls`, Gluon's `F`, `*args` / `**kwargs` and `hybrid_forward` are not checked;
`__init__` needs no return annotation.
"""
import importlib
import inspect
import pkgutil

import gluonbert

PACKAGES = ('gluonbert.model', 'gluonbert.data', 'gluonbert.vocab', 'gluonbert.convert',
            'gluonbert.store', 'gluonbert.train')
MODULES = ('gluonbert.export', 'gluonbert.quantization', 'gluonbert.precision',
           'gluonbert.summary', 'gluonbert.inference', 'gluonbert.pretrained',
           'gluonbert.pipelines', 'gluonbert.embeddings', 'gluonbert.batched',
           'gluonbert.onnx_export', 'gluonbert.metrics', 'gluonbert.files', 'gluonbert.hardware',
           'gluonbert.errors', 'gluonbert.utils', 'gluonbert.optimizer', 'gluonbert.registry',
           'gluonbert.convert_command', 'gluonbert.cli', 'gluonbert.launcher',
           'gluonbert.kernels')

UNCHECKED_PARAMETERS = {'self', 'cls', 'F'}
CHECKED_DUNDERS = {'__init__', '__call__'}



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


def _callables(obj, module_name, name=None):
    """('module:Qualname', function) of a class's checked methods, or of a function itself
    (named `name` in `module_name`, or by its own module and qualname when name is None)."""
    if inspect.isclass(obj):
        for qualname, function in _class_functions(obj, module_name):
            yield f'{module_name}:{qualname}', function
        return
    function = _function(obj)
    if function is not None:
        yield (f'{module_name}:{name}' if name else
               f'{function.__module__}:{function.__qualname__}'), function


def _public_functions(module):
    """('module:Qualname', function) of the public functions and methods `module` defines."""
    for name, obj in sorted(vars(module).items()):
        if not name.startswith('_') and getattr(obj, '__module__', None) == module.__name__:
            yield from _callables(obj, module.__name__, name)


def _exported_functions():
    """('module:Qualname', function) of the callables gluonbert's top level exports."""
    for name in sorted(dir(gluonbert)):
        obj = getattr(gluonbert, name)
        if not (name.startswith('_') or inspect.ismodule(obj) or not callable(obj)):
            yield from _callables(obj, obj.__module__)


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


def test_the_public_api_is_annotated():
    found = _unannotated(
        [item for module in _modules(PACKAGES, MODULES) for item in _public_functions(module)])
    assert not found, 'public functions without complete type hints:\n  ' + _report(found)


def test_gluonbert_exports_are_annotated():
    found = _unannotated(_exported_functions())
    assert not found, 'exported functions without complete type hints:\n  ' + _report(found)


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
