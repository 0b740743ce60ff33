"""gluonbert against HF transformers, GluonNLP 0.10 and the runtimes BERT is deployed on, measured
in the same run on one machine.

For each model the benchmark builds gluonbert's BERTModel (BERT-base with seeded random weights;
the MiniLM shape with the real all-MiniLM-L6-v2 weights when installed) and gives the very same
weights to HF transformers (BertModel, sdpa attention) and to GluonNLP 0.10; the optional peers
(`pip install -e '.[bench]'`) run the ONNX file `torch.onnx.export` writes of that HF model:
ONNX Runtime fp32 and int8 (`quantize_dynamic`), OpenVINO fp32 and bf16
(`INFERENCE_PRECISION_HINT`), beside torch bf16 autocast and gluonbert bf16. A peer whose package
is missing, or whose precision this CPU has no native kernels for, is skipped with the reason.
Memory: every model's runtimes are released before the next model; a run whose largest model
may not fit in the memory available (BERT-base with everything peaked at 22.3 GB) says so up
front.

No speed without the same answer: before anything is timed every variant's output is compared
with gluonbert's; an fp32 variant that disagrees (sequence output max |diff| > 1e-3) stops the
run, an int8 or bf16 one (pooled output cosine < 0.97) is refused, reported and not timed, and
the run exits 1. Then it reports, medians of --repeats after --warmup runs, each repeat running
every variant once in turn (round-robin, so machine noise hits all alike):

  * inference at each --shapes (batch x seq_len): gluonbert fp32 (hybridized, static), gluonbert
    int8 (gluonbert.quantization, calibrated on 4 batches of the shape), HF torch, GluonNLP, the
    optional peers, and with --levers gluonbert fp32 + optimize_for(MKLDNN);
  * one fine-tuning step (forward + backward + optimizer update, batch 8 x seq 128, dropout 0.1,
    2-class head on the pooled output);
  * peak resident memory of each framework and mode, each in a fresh process;
  * achieved GFLOP/s against this CPU's multiply-add peak in each variant's precision (fp32,
    bf16, int8: a compiled probe of its FMA units, same run), and the fp32 GEMM rate of a large
    mx.nd.dot.

    python -m gluonbert.benchmark --json out/benchmark.json
    python scripts/benchmark.py --models bert_2_128_2 --shapes 2x16 --repeats 1

OMP_NUM_THREADS, if unset, is set to the number of cores (the process restarts itself when MXNet
was already loaded): without it MXNet runs single-threaded (1.7x slower on BERT here). torch,
ONNX Runtime (intra_op_num_threads) and OpenVINO (INFERENCE_NUM_THREADS) get the same count.
"""
