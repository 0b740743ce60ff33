"""gluonbert.files: whole files or nothing, no temporary left behind, the umask respected."""
import json
import os
import stat

import pytest

from gluonbert import files


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_open_replaces_whole_file(tmp_path):
    target = tmp_path / 'out.txt'
    target.write_text('old')
    with files.atomic_open(str(target)) as f:
        f.write('new')
        assert target.read_text() == 'old'  # nothing visible before the block ends
    assert target.read_text() == 'new'
    assert os.listdir(tmp_path) == ['out.txt']


def test_failed_write_keeps_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / 'out.json'
    files.write_json(str(target), {'a': 1})
    with pytest.raises(TypeError):
        files.write_json(str(target), {'a': object()})  # not JSON-serializable, mid-write
    assert json.loads(target.read_text()) == {'a': 1}
    assert os.listdir(tmp_path) == ['out.json']


def test_new_files_and_folders_follow_the_umask(tmp_path, umask_027):
    path = files.write_json(str(tmp_path / 'a.json'), [1])
    assert _mode(path) == 0o640
    with files.atomic_folder(str(tmp_path / 'folder')) as temp:
        files.write_json(os.path.join(temp, 'b.json'), [2])
    assert _mode(tmp_path / 'folder') == 0o750
    assert json.loads((tmp_path / 'folder' / 'b.json').read_text()) == [2]


def test_write_with_keeps_the_suffix_the_writer_needs(tmp_path):
    seen = []
    files.write_with(str(tmp_path / 'plot.png'), lambda p: (seen.append(p), open(p, 'wb').close()),
                     suffix='.png')
    assert seen[0].endswith('.png') and os.path.basename(seen[0]).startswith('.plot.png')
    assert os.listdir(tmp_path) == ['plot.png']


def test_atomic_folder_refuses_to_clobber_unless_asked(tmp_path):
    target = tmp_path / 'model'
    with files.atomic_folder(str(target)) as temp:
        open(os.path.join(temp, 'v1'), 'w').close()
    with pytest.raises(FileExistsError, match='overwrite'):
        with files.atomic_folder(str(target)) as temp:
            open(os.path.join(temp, 'v2'), 'w').close()
    assert os.listdir(target) == ['v1']
    with files.atomic_folder(str(target), overwrite=True) as temp:
        open(os.path.join(temp, 'v2'), 'w').close()
    assert os.listdir(target) == ['v2']
    assert sorted(os.listdir(tmp_path)) == ['model']  # no temp or set-aside folder left


def test_atomic_open_refuses_append(tmp_path):
    with pytest.raises(ValueError, match='whole files'):
        with files.atomic_open(str(tmp_path / 'x'), 'a'):
            pass


def test_staged_files_move_together_or_not_at_all(tmp_path):
    prefix = str(tmp_path / 'model')
    with files.staged_files(prefix, ('-0000.params', '-symbol.json')) as staged:
        for suffix in ('-0000.params', '-symbol.json'):
            open(staged + suffix, 'w').close()
        assert not [f for f in os.listdir(tmp_path) if f.startswith('model-')]  # not yet
    assert sorted(os.listdir(tmp_path)) == ['model-0000.params', 'model-symbol.json']
    with pytest.raises(RuntimeError):
        with files.staged_files(prefix + '2', ('-0000.params', '-symbol.json')) as staged:
            open(staged + '-0000.params', 'w').close()
            raise RuntimeError('the writer failed halfway')
    assert sorted(os.listdir(tmp_path)) == ['model-0000.params', 'model-symbol.json']
