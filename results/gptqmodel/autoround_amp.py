"""O AutoRound na CPU com amp=True (bf16, o padrão) e amp=False (fp32): tempo e perplexidade (README.md desta pasta).

    PYTHONPATH=$PWD HF_HUB_OFFLINE=1 .venv/bin/python results/gptqmodel/autoround_amp.py
"""

import copy
import time

import auto_round
import torch

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
calib = calibration_samples(ids[0, 4096:], 8, 256, seed=0)[:2]     # as 2 primeiras janelas da seção 8 do notebook 02
library_rounder = auto_round.AutoRound
for amp in (True, False):
    auto_round.AutoRound = lambda *args, amp=amp, **kwargs: library_rounder(*args, amp=amp, **kwargs)
    for method in ("awq", "autoround"):
        start = time.perf_counter()
        quantized = library_quant.autoround_quantize(copy.deepcopy(model), tokenizer, calib, method, group_size=64,
                                                     iters=10, n_grid=10)
        seconds = time.perf_counter() - start
        ppl = perplexity(quantized, ids[:, :1024], window=1024, stride=512)
        print(f"amp={amp} {method}: {seconds:.1f} s, perplexidade {ppl:.2f}")
