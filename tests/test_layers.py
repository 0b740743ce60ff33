"""The package's layer order: every gluonbert module imports only modules of its own layer or below.

A module missing from LAYERS fails the test: a new module is placed on purpose, not by accident.
Function-level (lazy) imports count too: they are upward imports all the same. Imports under
`if TYPE_CHECKING:` do not: they exist only for type checkers (annotations), never at run time.
"""
import ast
import os

from conftest import REPO

PACKAGE = os.path.join(REPO, 'gluonbert')

# Lowest first. A module or subpackage name (the first part after `gluonbert.`) -> its layer.
LAYERS = {
    # 0: leaf utilities with no gluonbert imports of their own kind
    'hardware': 0, 'files': 0, 'errors': 0, 'metrics': 0, 'kernels': 0, 'mxnet_compat': 0,
    # 1: the blocks and the input pipeline, which know nothing of each other's users
    'model': 1, 'data': 1, 'vocab': 1,
    # 2: checkpoint formats
    'convert': 2,
    # 3: where checkpoints come from (embedded package, cache, mirror, Hub)
    'store': 3,
    # 4: building and running models
    'registry': 4, 'export': 4, 'precision': 4, 'quantization': 4, 'summary': 4,
    'onnx_export': 4, 'pretrained': 4, 'inference': 4, 'pipelines': 4,
    'embeddings': 4, 'batched': 4,
    # 5: training
    'train': 5, 'optimizer': 5, 'utils': 5,
    # 6: user-facing entry points
    'cli': 6, 'convert_command': 6, 'launcher': 6, 'benchmark': 6,
}


def _modules():
    """(dotted module name, path) of every module in the package."""
    for folder, _, files in os.walk(PACKAGE):
        for name in sorted(files):
            if name.endswith('.py'):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, os.path.dirname(PACKAGE))[:-3].replace(os.sep, '.')
                yield (rel[:-len('.__init__')] if rel.endswith('.__init__') else rel), path


def _is_type_checking(test):
    """True for the condition `TYPE_CHECKING` or `typing.TYPE_CHECKING`."""
    return (isinstance(test, ast.Name) and test.id == 'TYPE_CHECKING') or (
        isinstance(test, ast.Attribute) and test.attr == 'TYPE_CHECKING')


def _runtime_nodes(tree):
    """Every node of `tree` (as ast.walk) except the body of `if TYPE_CHECKING:` blocks (their
    `else:` branch runs, so it is kept)."""
    pending = [tree]
    while pending:
        node = pending.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend(node.orelse)
            continue
        pending.extend(ast.iter_child_nodes(node))


def _imports(module, path):
    """Absolute gluonbert module names imported anywhere in the file (lazy imports included)."""
    is_package = path.endswith('__init__.py')
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read(), path)
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split('.')
                base = base if is_package else base[:-1]
                base = base[:len(base) - (node.level - 1)]
                prefix = '.'.join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ''
            # `from . import x` imports the submodule x
            names = [prefix + '.' + alias.name for alias in node.names] if not node.module \
                else [prefix]
        else:
            continue
        yield from (name for name in names if name.split('.')[0] == 'gluonbert')


def _layer(module):
    """Layer of a dotted gluonbert module name (the package root itself is on top)."""
    parts = module.split('.')
    return None if len(parts) == 1 else LAYERS.get(parts[1])


def test_every_module_has_a_layer():
    missing = sorted({name.split('.')[1] for name, _ in _modules()
                      if '.' in name and name.split('.')[1] not in LAYERS})
    assert not missing, f'place these modules in tests/test_layers.py LAYERS: {missing}'


def test_imports_go_down():
    upward = []
    for module, path in _modules():
        own = _layer(module)
        if own is None:
            continue  # gluonbert/__init__.py: the public API, above everything
        for target in _imports(module, path):
            layer = _layer(target)
            if target == 'gluonbert' or (layer is not None and layer > own):
                upward.append(f'{module} (layer {own}) imports {target} (layer {layer})')
    assert not upward, 'imports that go up a layer:\n  ' + '\n  '.join(upward)


def test_the_checker_sees_relative_and_lazy_imports(tmp_path):
    """The parser resolves `from ..x import y` and function-level imports (else the test above
    could pass on anything)."""
    source = tmp_path / 'mod.py'
    source.write_text('from ..train import loop\n'
                      'def f():\n    from ...registry import get_model\n'
                      'from . import sibling\n')
    found = set(_imports('gluonbert.model.sub.mod', str(source)))
    assert found == {'gluonbert.model.train', 'gluonbert.registry',
                     'gluonbert.model.sub.sibling'}


def test_the_checker_skips_type_checking_imports(tmp_path):
    """Imports only type checkers run (for annotations) are no layer dependency; the `else:`
    branch of such a block, and any other `if`, run and count."""
    source = tmp_path / 'mod.py'
    source.write_text('import typing\nfrom typing import TYPE_CHECKING\n'
                      'if TYPE_CHECKING:\n    from ...registry import get_model\n'
                      'else:\n    from ...store import fetch\n'
                      'if typing.TYPE_CHECKING:\n    from ...train import loop\n'
                      'if not TYPE_CHECKING:\n    from ...cli import main\n')
    found = set(_imports('gluonbert.model.sub.mod', str(source)))
    assert found == {'gluonbert.store', 'gluonbert.cli'}
