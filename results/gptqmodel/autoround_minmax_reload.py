"""Duas escolhas de `course_utils.library_quant`, medidas na CPU (README.md desta pasta):

1. o método AutoRound com e sem o ajuste do recorte mínimo/máximo (`enable_minmax_tuning`), com a calibração e o
   orçamento da seção 8 do notebook 02 (4 janelas de 128 tokens, 10 passos, lr 0,05): perplexidade;
2. o checkpoint de inteiros recarregado em fp16 e em bf16: tempo de um forward de 256 tokens.

    PYTHONPATH=$PWD HF_HUB_OFFLINE=1 .venv/bin/python results/gptqmodel/autoround_minmax_reload.py
"""

import copy
import time

import auto_round
import torch
from transformers import AutoModelForCausalLM

from course_utils import library_quant
from course_utils.calibration import calibration_samples
from course_utils.data import text_token_ids
from course_utils.environment import quiet_libraries
from course_utils.measure import perplexity
from course_utils.models import load_model, load_tokenizer

quiet_libraries()
MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
tokenizer = load_tokenizer(MODEL_ID)
model = load_model(MODEL_ID, device="cpu", dtype=torch.float32)
ids = text_token_ids(tokenizer, "en")
calib = calibration_samples(ids[0, 4096:], 8, 128, seed=0)[:4]     # as 4 primeiras janelas da seção 8 do notebook 02
eval_ids = ids[:, :1024]

library_config = auto_round.SignRoundConfig
for minmax in (False, True):
    auto_round.SignRoundConfig = lambda *args, minmax=minmax, **kwargs: library_config(
        *args, **{**kwargs, "enable_minmax_tuning": minmax})
    quantized = library_quant.autoround_quantize(copy.deepcopy(model), tokenizer, calib, "autoround", group_size=64,
                                                 iters=10, n_grid=10, lr=0.05)
    print(f"enable_minmax_tuning={minmax}: perplexidade {perplexity(quantized, eval_ids, window=1024, stride=512):.2f}")
auto_round.SignRoundConfig = library_config

folder = library_quant.autoround_checkpoint(copy.deepcopy(model), tokenizer, calib, "autoround", group_size=64,
                                            iters=10, n_grid=10, lr=0.05)
probe = ids[:, :256]
for dtype in (torch.bfloat16, torch.float16):
    with library_quant.quiet_autoround():
        reloaded = AutoModelForCausalLM.from_pretrained(str(folder), device_map="cpu", dtype=dtype).eval()
    with torch.inference_mode():
        reloaded(probe)                                 # aquecimento
        start = time.perf_counter()
        reloaded(probe)
        seconds = time.perf_counter() - start
    print(f"checkpoint recarregado em {dtype}: um forward de {probe.shape[1]} tokens em {seconds:.2f} s")
    del reloaded
