"""gluonbert: a BERT model zoo for Apache MXNet Gluon."""
from setuptools import find_packages, setup

MXNET = 'mxnet==1.9.1'

setup(
    name='gluonbert',
    version='0.1.0',
    description='BERT model zoo for Apache MXNet Gluon: blocks, pretrained weights, '
                'WordPiece tokenizer, fine-tuning and export.',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.10',
    packages=find_packages(include=['gluonbert', 'gluonbert.*']),
    package_data={'gluonbert': ['vocabs/*.txt', 'kernels/*.cc']},  # kernels: built on first use
    install_requires=[
        'numpy>=1.20,<1.24',  # MXNet 1.9 uses np.bool, removed in numpy 1.24
        'tqdm>=4.60',
        'tokenizers==0.23.3',  # Rust WordPiece engine behind gluonbert.data.BERTTokenizer
        'matplotlib>=3.7,<3.11',  # training curves and similarity heatmaps (PNG)
    ],
    entry_points={'console_scripts': ['gluonbert=gluonbert.cli:main']},
    extras_require={
        'cpu': [MXNET],
        'cu112': ['mxnet-cu112==1.9.1'],
        # Multi-worker training with --comm-backend horovod (the kvstore backends need nothing).
        # Horovod's build must import mxnet, so install mxnet first, then build without isolation:
        #   pip install wheel -e '.[cpu]'
        #   HOROVOD_WITH_MXNET=1 HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 \
        #   HOROVOD_WITHOUT_MPI=1 HOROVOD_WITH_GLOO=1 \
        #   pip install --no-build-isolation -e '.[horovod]'
        # (3-8 minutes on 2 cores; a plain `pip install horovod` fails or builds without MXNet)
        'horovod': ['horovod==0.28.1'],
        'test': [
            'pytest==8.3.4',
            'gluonnlp==0.10.0',  # the numerical referee for the blocks and the .params converter
            'torch==2.13.0',  # CPU build on these machines; HF's reference implementation runs on it
            'transformers==5.23.0',
            # writes real Google-format TF checkpoints in the converter tests; gluonbert reads
            # them without TensorFlow
            'tensorflow-cpu==2.15.1',
        ],
    },
)
