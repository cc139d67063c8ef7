# %% [markdown]
# # 08 · Um modelo de 7B no Colab
#
# **Objetivos.** Ao fim deste notebook você vai saber:
# - contar, antes de baixar qualquer peso, quanto um 7B ocupa em cada formato **como as bibliotecas guardam** (o que fica
#   em 16 bits, quanto custam as escalas do INT8 e do NF4) e somar o cache KV e as ativações;
# - deixar o planejador do curso (`course_utils.planner`) escolher o formato a partir do hardware que ele vê, e entender
#   a escolha;
# - aplicar a receita do Colab grátis para um 7B *instruct* numa T4: NF4 com dupla quantização, computação em fp16,
#   `device_map="auto"`, checkpoint em shards de safetensors, template de chat, saída em streaming com `TextStreamer`,
#   memória conferida antes e depois, e limpeza entre modelos;
# - conferir o planejador contra medidas, e medir um Llama-2-7B montado só da configuração (pesos aleatórios, nada
#   baixado) em fp16, INT8 e NF4 numa GPU;
# - decidir o que fazer quando não cabe.
#
# **Pré-requisitos.** Notebooks 01 (bitsandbytes), 03 (offload) e 05 (cache KV).
# **Tempo estimado.** 30 minutos de leitura. A execução leva uns 3 minutos numa CPU de 2 núcleos (modelo de referência);
# no Colab com T4, o download do 7B (~13 GB) leva mais uns minutos.
# **Hardware.** GPU recomendada: uma T4 do Colab roda o 7B. CPU serve: sem GPU (ou sem acesso ao Hub) o mesmo código roda
# no modelo de referência do curso, e a medida do 7B com pesos aleatórios, que precisa de GPU, é pulada.
#
# Todo número impresso aqui é medido agora, nesta execução; números citados dizem a fonte.

# %% [markdown]
# ## Parâmetros
#
# - `MODEL_ID`: o 7B *instruct* padrão é o **Llama 2 Chat 7B** da Meta (`meta-llama/Llama-2-7b-chat-hf`). Ele é
#   **restrito**: a licença é a *Llama 2 Community License*, e é preciso aceitá-la na página do modelo no Hub (com a mesma
#   conta) e fazer login no Colab (`from huggingface_hub import login; login()`, ou o segredo `HF_TOKEN`).
# - `ALT_MODEL_ID`: uma alternativa que **não pede aceite nem login**, o **Qwen2.5-7B-Instruct** (licença Apache 2.0).
#   Se o padrão não puder ser lido, o notebook usa a alternativa e diz por quê.
# - Sem Hub (testes, `make course`), o mesmo caminho roda no modelo de referência `OFFLINE_MODEL_ID`.

# %% tags=["parameters"]
MODEL_ID = "meta-llama/Llama-2-7b-chat-hf"      # restrito: aceite a licença Llama 2 no Hub e faça login
ALT_MODEL_ID = "Qwen/Qwen2.5-7B-Instruct"        # Apache 2.0, sem aceite
OFFLINE_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOKE = False
SEED = 0
DEVICE = "auto"
FORMAT = "auto"              # "auto": o planejador escolhe; ou "fp16", "bf16", "int8", "nf4", "nf4-dq"
ALLOW_BF16 = True            # False: trata a GPU como sem bf16 rápido, como a T4 (o planejador fica no fp16)
CONTEXT_TOKENS = 2048        # contexto que o planejador reserva no cache KV
MAX_NEW_TOKENS = 96          # tokens gerados no chat
CHAT_PROMPT = "Explique em duas frases o que é quantização em 4 bits e por que ela ajuda a rodar um 7B numa T4."
OFFLINE_CHAT_PROMPT = "Explain in two sentences what 4-bit quantization is."   # o SmolLM2 fala quase só inglês
VERIFY_FORMATS = ["fp32", "fp16", "bf16", "int8", "nf4", "nf4-dq"]   # medidos contra o planejador (modelo de referência)
RUN_7B_FROM_CONFIG = True    # (GPU) Llama-2-7B com pesos aleatórios em fp16, INT8 e NF4 + DQ
PROMPT_TOKENS_7B = 128
NEW_TOKENS_7B = 32
SCRATCH_DIR = None           # onde gravar o checkpoint aleatório de ~13 GB (None: pasta temporária do sistema)
TORCH_THREADS = None         # None: padrão do torch

# %%
import dataclasses, gc, shutil, tempfile, time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, BitsAndBytesConfig, TextStreamer
from transformers.utils import logging as hf_logging

from course_utils.environment import environment_info, hub_available, pick_device, quiet_libraries
from course_utils.exercises import check
from course_utils.measure import current_rss_mb
from course_utils.models import (LLAMA2_7B_CONFIG, LLAMA2_13B_CONFIG, ModelNotAvailableError, load_model, load_tokenizer,
                                 resolve_model)
from course_utils.offload import peak_rss_since_reset_mb, reset_peak_rss, summarize_device_map
from course_utils.planner import (FORMAT_LABELS, describe_config, detect_hardware, from_pretrained_kwargs, load_config,
                                  measured_weight_bytes, plan_memory, plan_presets, verdict_table, weight_bytes,
                                  write_random_checkpoint)
from course_utils.results import claim, claim_skipped, record

if SMOKE:  # CI numa máquina compartilhada de 2 núcleos: 1 thread evita a espera ativa do OpenMP (tests/conftest.py)
    MAX_NEW_TOKENS, NEW_TOKENS_7B = 16, 16
    VERIFY_FORMATS = [f for f in VERIFY_FORMATS if f != "nf4"]
    TORCH_THREADS = TORCH_THREADS or 1
if TORCH_THREADS:
    torch.set_num_threads(TORCH_THREADS)

quiet_libraries()
hf_logging.disable_progress_bar()
torch.manual_seed(SEED)
device = pick_device(DEVICE)
on_gpu = device.startswith("cuda")
online = hub_available()
print(environment_info())
print(f"Hub acessível: {online}")
workdir = Path(tempfile.mkdtemp(prefix="curso08_"))


def memory_report(label):
    """RAM do processo agora e, com GPU, memória alocada/reservada pelo PyTorch e livre no driver."""
    rep = {"rss_mb": current_rss_mb()}
    line = f"[{label}] RAM do processo {rep['rss_mb']:.0f} MiB"
    if on_gpu:
        free, total = torch.cuda.mem_get_info()
        rep.update(gpu_alloc_mb=torch.cuda.memory_allocated() / 2**20,
                   gpu_reserved_mb=torch.cuda.memory_reserved() / 2**20, gpu_free_mb=free / 2**20)
        line += (f" | GPU: alocado {rep['gpu_alloc_mb']:.0f} MiB, reservado {rep['gpu_reserved_mb']:.0f} MiB, "
                 f"livre {free / 2**20:.0f} de {total / 2**20:.0f} MiB")
    print(line)
    return rep


before_all = memory_report("início")

# %% [markdown]
# ## 1. Quanto pesa um 7B, byte a byte
#
# Um Llama-2-7B tem 6,74 bilhões de parâmetros. A conta ingênua "parâmetros × bytes" erra porque as bibliotecas não
# guardam tudo no mesmo formato. Com o bitsandbytes (via `from_pretrained(..., quantization_config=...)`):
#
# - só as camadas `nn.Linear` dos blocos são quantizadas; **embeddings, `lm_head` e normas ficam no dtype de carga**
#   (fp16 na GPU) — o transformers pula o `lm_head`, o que está amarrado a ele e o último módulo;
# - **INT8 (LLM.int8)**: o peso em int8 e uma escala fp32 por linha (`SCB`);
# - **NF4**: dois pesos por byte (uint8) e um `absmax` fp32 a cada bloco de 64 pesos, mais o mapa de 16 níveis;
# - **NF4 + dupla quantização**: o `absmax` vira 8 bits, com uma constante fp32 a cada 256 blocos e um mapa de 256 níveis.
#
# O planejador monta o modelo no dispositivo `meta` (formatos, nenhum byte alocado) e soma tensor a tensor. Dois números
# por formato: o que de fato fica na memória (com as escalas) e o que o `get_memory_footprint()` do transformers conta
# (parâmetros e buffers, **sem** as escalas do bitsandbytes).

# %%
cited = {"fp16": 12.55, "int8": 6.52, "nf4-dq": 3.50}   # docs/referencias.md#h100-7b: get_memory_footprint numa H100
print(describe_config(LLAMA2_7B_CONFIG))
print(f"{'formato':<20}{'guardado':>10}{'footprint':>11}{'escalas':>9}   citado (H100, referências)")
for fmt in ("fp16", "int8", "nf4", "nf4-dq"):
    w = weight_bytes(LLAMA2_7B_CONFIG, fmt, "fp16")
    ref = f"{cited[fmt]:.2f} GiB" if fmt in cited else "—"
    print(f"{FORMAT_LABELS[fmt]:<20}{w['stored'] / 2**30:>9.2f}G{w['footprint'] / 2**30:>10.2f}G"
          f"{(w['stored'] - w['footprint']) / 2**20:>7.0f}M   {ref}")
w_nf4 = weight_bytes(LLAMA2_7B_CONFIG, "nf4-dq", "fp16")
print(f"\nno NF4, {w_nf4['quantized_params'] / 1e9:.2f} B de {w_nf4['params'] / 1e9:.2f} B parâmetros são quantizados; "
      f"os outros {(w_nf4['params'] - w_nf4['quantized_params']) / 1e6:.0f} M (embeddings e lm_head) ficam em fp16")

# %% [markdown]
# Os números da H100 vêm das [referências do curso](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#h100-7b) (citados, não medidos aqui). A seção 5 mede o mesmo na GPU que
# estiver disponível. Repare que no NF4 os 262 M parâmetros que ficam em fp16 (embeddings e `lm_head`) pesam quase tanto
# quanto um bilhão de parâmetros em 4 bits.

# %% [markdown]
# ## 2. O planejador escolhe pelo hardware que ele vê
#
# Além dos pesos, a conta precisa do **cache KV** (cresce com o contexto: notebook 05), de uma **folga para ativações**
# (a maior passada, o *prefill*) e da **reserva do runtime** (o contexto CUDA ocupa memória da GPU fora do PyTorch).
# Com 10% de folga para fragmentação, cada formato ganha um veredito. O material antigo tinha limiares fixos no código
# ("se a GPU tem mais de 14 GB, fp16"); aqui a decisão vem da conta, para o modelo e a máquina de agora.

# %%
hw = detect_hardware(str(workdir))
if not ALLOW_BF16:
    hw = dataclasses.replace(hw, gpu_bf16=False)
print(f"hardware visto: {hw.name} | GPU livre: {hw.gpu_gib or 0:.1f} GiB | RAM disponível: {hw.cpu_gib:.1f} GiB "
      f"| bf16 rápido: {hw.gpu_bf16 if hw.has_gpu else 'n/a'}")

target_id, target_config = None, None
for candidate in ((MODEL_ID, ALT_MODEL_ID) if online else ()):
    try:
        target_config = load_config(candidate)
        target_id = candidate
        break
    except ModelNotAvailableError as exc:
        print(f"{candidate}: {exc}")
if target_config is None:
    target_config, target_name = LLAMA2_7B_CONFIG, "Llama-2-7B (configuração que o curso traz)"
    print("Sem Hub: o plano do 7B usa course_utils.models.LLAMA2_7B_CONFIG (só a configuração, nenhum peso).")
else:
    target_name = target_id
plan_7b = plan_memory(target_config, hardware=hw, context_tokens=CONTEXT_TOKENS, name=target_name)
print()
print(plan_7b)
print()
print(verdict_table(plan_presets(target_config, context_tokens=CONTEXT_TOKENS, name=target_name)))
plan_t4 = plan_memory(LLAMA2_7B_CONFIG, hardware="colab_t4", context_tokens=CONTEXT_TOKENS, name="Llama-2-7B")
claim("na T4 o 7B vai em NF4 + dupla quantização", plan_t4.choice == "nf4-dq", measured=str(plan_t4.choice))

# %% [markdown]
# Agora o modelo que vamos **carregar de verdade** nesta execução: o 7B se o Hub responde (e a licença foi aceita),
# senão o modelo de referência — o mesmo código, do plano ao `from_pretrained`.

# %%
run_id = target_id if target_id is not None else OFFLINE_MODEL_ID
plan_run = plan_memory(run_id, hardware=hw, context_tokens=CONTEXT_TOKENS)
fmt = plan_run.choice if FORMAT == "auto" else FORMAT
assert fmt is not None, "nada cabe nesta máquina: veja a seção 6 (quando não cabe)"
print(plan_run)
print(f"\nformato que vamos usar: {FORMAT_LABELS[fmt]}" + (" (escolha do planejador)" if FORMAT == "auto" else " (FORMAT)"))

# %% [markdown]
# ## 3. Carregar, conversar, conferir a memória
#
# `from_pretrained_kwargs` traduz o plano nos argumentos do `from_pretrained`: o `dtype`, o `BitsAndBytesConfig`
# (quando o formato é quantizado), `device_map="auto"` e um `max_memory` com a memória útil do plano.
#
# **Shards de safetensors e a RAM do Colab.** Um 7B em fp16 tem ~13 GB; o Colab grátis tem 12,7 GiB de RAM. O checkpoint
# vem em vários arquivos `.safetensors` (*shards*) que o transformers mapeia na memória (`mmap`) e lê tensor a tensor; com
# `device_map`, cada tensor vai direto para o dispositivo (e é quantizado lá), sem uma cópia do modelo inteiro em fp16 na
# RAM. As páginas lidas do arquivo contam no RSS enquanto ele está mapeado, mas são cache do arquivo, que o sistema pode
# descartar. Medimos o pico de RAM da carga zerando o `VmHWM` do processo antes (`/proc/self/clear_refs`).

# %%
tokenizer = load_tokenizer(run_id)
load_kwargs = from_pretrained_kwargs(plan_run, fmt, offload_folder=str(workdir / "offload"))
print({k: (v if k != "max_memory" else {d: f"{b / 2**30:.1f} GiB" for d, b in v.items()}) for k, v in load_kwargs.items()})

source = resolve_model(run_id)
mem_before = memory_report("antes de carregar")
peak_reset = reset_peak_rss()
start = time.perf_counter()
model = AutoModelForCausalLM.from_pretrained(source, **load_kwargs).eval()
load_seconds = time.perf_counter() - start
mem_loaded = memory_report(f"depois de carregar ({load_seconds:.1f} s)")
load_peak_rss_mb = peak_rss_since_reset_mb() if peak_reset else float("nan")

ckpt = Path(source) if Path(source).is_dir() else None
if ckpt is None:  # do Hub: os arquivos ficam no cache local do huggingface_hub
    from huggingface_hub import snapshot_download
    ckpt = Path(snapshot_download(run_id, allow_patterns=["*.safetensors", "*.json"]))
shards = sorted(ckpt.glob("*.safetensors"))
ckpt_mb = sum(s.stat().st_size for s in shards) / 2**20
where = getattr(model, "hf_device_map", None) or {"": str(model.device)}
print(f"checkpoint: {len(shards)} arquivo(s) safetensors, {ckpt_mb:.0f} MiB; onde ficou cada parte: "
      + "; ".join(f"{dev}: {names or 'o modelo inteiro'}" for dev, names in summarize_device_map(where).items()))
print(f"pico de RAM do processo durante a carga: {load_peak_rss_mb:.0f} MiB (antes: {mem_before['rss_mb']:.0f} MiB)")

measured_run = measured_weight_bytes(model)
predicted_run = plan_run[fmt]
run_err = 100 * abs(measured_run["footprint"] / predicted_run.footprint_bytes - 1)
print(f"get_memory_footprint: {measured_run['footprint'] / 2**20:.1f} MiB | planejador: "
      f"{predicted_run.footprint_bytes / 2**20:.1f} MiB ({run_err:.2f}% de diferença)")
assert run_err < 5, "o planejador deveria prever o footprint dos pesos com menos de 5% de erro"
if on_gpu and predicted_run.verdict == "gpu":
    grew = mem_loaded["gpu_alloc_mb"] - mem_before["gpu_alloc_mb"]
    print(f"a GPU ganhou {grew:.0f} MiB alocados; o planejador previa {predicted_run.weights_bytes / 2**20:.0f} MiB de pesos")

# %% [markdown]
# **O template de chat.** Modelos *instruct* foram treinados com um formato de conversa próprio (marcadores de papel,
# tokens especiais). `apply_chat_template` monta esse texto a partir de uma lista de mensagens; `add_generation_prompt=True`
# abre a vez do assistente. `TextStreamer` imprime cada pedaço de texto assim que ele é gerado, em vez de esperar o fim.

# %%
prompt = CHAT_PROMPT if run_id != OFFLINE_MODEL_ID else OFFLINE_CHAT_PROMPT
messages = [{"role": "user", "content": prompt}]
print(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))


def chat(m, label, new_tokens=MAX_NEW_TOKENS):
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True).to(m.device)
    streamer = TextStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    print(f"--- {label} ---")
    start = time.perf_counter()
    with torch.inference_mode():
        out = m.generate(**inputs, max_new_tokens=new_tokens, do_sample=False, streamer=streamer, pad_token_id=pad)
    seconds = time.perf_counter() - start
    new = out.shape[1] - inputs["input_ids"].shape[1]
    peak = torch.cuda.max_memory_allocated() / 2**20 if on_gpu else float("nan")
    print(f"--- {new} tokens em {seconds:.1f} s ({new / seconds:.1f} tokens/s)"
          + (f"; pico alocado na GPU {peak:.0f} MiB" if on_gpu else ""))
    return new / seconds


tokens_per_s_chat = chat(model, f"{run_id} em {FORMAT_LABELS[fmt]}")
mem_after_chat = memory_report("depois de gerar")

# %% [markdown]
# ## 4. A receita da T4: NF4 + dupla quantização, computação em fp16
#
# Na T4 do Colab o planejador escolhe NF4 com dupla quantização (seção 2). A receita, escrita à mão:
#
# - `load_in_4bit=True, bnb_4bit_quant_type="nf4"`: pesos em 4 bits com os níveis da distribuição normal (QLoRA);
# - `bnb_4bit_use_double_quant=True`: quantiza também os `absmax` (economiza ~0,37 bit por parâmetro, segundo o artigo
#   do QLoRA citado nas [referências do curso](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#qlora));
# - `bnb_4bit_compute_dtype=torch.float16`: a T4 não tem bf16 rápido; as contas são feitas em fp16 (na CPU, fp32);
# - `device_map="auto"`: o `accelerate` põe tudo na GPU se couber (e faria offload se não coubesse: notebook 03).
#
# Conferimos que o planejador monta exatamente essa configuração e, se o modelo carregado acima não estiver nesse formato
# (é o caso na CPU, onde o planejador prefere fp32), **limpamos a memória** e carregamos a receita.

# %%
compute_dtype = torch.float16 if on_gpu else torch.float32
recipe = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                            bnb_4bit_compute_dtype=compute_dtype)
planned = from_pretrained_kwargs(plan_run, "nf4-dq")["quantization_config"]
same = all(getattr(planned, k) == getattr(recipe, k) for k in
           ("load_in_4bit", "bnb_4bit_quant_type", "bnb_4bit_use_double_quant", "bnb_4bit_compute_dtype"))
assert same, "o planejador deveria montar a mesma receita NF4 + DQ"
print("o planejador monta a mesma receita:", planned.to_dict()["bnb_4bit_quant_type"], "+ dupla quantização,",
      "computação em", planned.bnb_4bit_compute_dtype)

measured_ref = {}   # medidas do modelo de referência, para a seção 5
if run_id == OFFLINE_MODEL_ID:
    measured_ref[fmt] = measured_run
if fmt == "nf4-dq":
    print("O modelo carregado na seção 3 já é a receita: nada a recarregar.")
    recipe_model = model
else:
    print("Limpeza entre modelos: apagar as referências, coletar o lixo e devolver o cache da GPU ao driver.")
    del model
    gc.collect()
    if on_gpu:
        torch.cuda.empty_cache()
    mem_clean = memory_report("depois da limpeza")
    if on_gpu:
        assert mem_clean["gpu_alloc_mb"] <= mem_before["gpu_alloc_mb"] + 64, "a limpeza deveria liberar a GPU"
    recipe_model = AutoModelForCausalLM.from_pretrained(
        source, quantization_config=recipe, dtype=compute_dtype, device_map="auto").eval()
    memory_report("receita NF4 + DQ carregada")
    # na CPU o bitsandbytes desquantiza cada peso a cada passo: poucos tokens bastam para ver a receita funcionar
    chat(recipe_model, f"{run_id} em NF4 + DQ", MAX_NEW_TOKENS if on_gpu else min(MAX_NEW_TOKENS, 32))
recipe_footprint_mb = measured_weight_bytes(recipe_model)["footprint"] / 2**20
if run_id == OFFLINE_MODEL_ID:
    measured_ref["nf4-dq"] = measured_weight_bytes(recipe_model)
print(f"receita NF4 + DQ: get_memory_footprint {recipe_footprint_mb:.1f} MiB")

# %% [markdown]
# Limpeza final antes de medir outros modelos: sem isso, o próximo `from_pretrained` somaria memória ao que ficou.

# %%
model = recipe_model = None
gc.collect()
if on_gpu:
    torch.cuda.empty_cache()
mem_end = memory_report("depois da limpeza")
if on_gpu:
    assert mem_end["gpu_alloc_mb"] <= mem_before["gpu_alloc_mb"] + 64, "a limpeza deveria devolver a GPU ao estado inicial"

# %% [markdown]
# ## 5. O planejador confere com a medida?
#
# No modelo de referência, carregado em cada formato de `VERIFY_FORMATS` no dispositivo desta execução, comparamos a
# previsão com (a) o `get_memory_footprint()` e (b) tudo o que o modelo guarda, escalas do bitsandbytes incluídas
# (`measured_weight_bytes`). `planner_max_error_pct` é o pior erro de todas as comparações que rodaram.

# %%
ref_compute = "fp16" if on_gpu else "fp32"
ref_dtype = {"fp16": torch.float16, "fp32": torch.float32}[ref_compute]
quant_configs = {
    "int8": BitsAndBytesConfig(load_in_8bit=True),
    "nf4": BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=ref_dtype),
    "nf4-dq": BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                 bnb_4bit_compute_dtype=ref_dtype),
}
if fmt in measured_ref and fmt in quant_configs and ref_compute != plan_run.compute_dtype:
    measured_ref.pop(fmt)  # carregado com outro dtype de computação: medimos de novo abaixo
planner_errors = {}
print(f"{'formato':<20}{'previsto':>10}{'medido':>10}{'erro':>8}  |{'guardado':>10}{'medido':>10}{'erro':>8}   (MiB)")
for f in VERIFY_FORMATS:
    if f not in measured_ref:
        if f in quant_configs:
            m = load_model(OFFLINE_MODEL_ID, device=device, quantization_config=quant_configs[f])
        else:
            m = load_model(OFFLINE_MODEL_ID, device=device,
                           dtype={"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[f])
        measured_ref[f] = measured_weight_bytes(m)
        del m
        gc.collect()
    pred = weight_bytes(OFFLINE_MODEL_ID, f, ref_compute)
    meas = measured_ref[f]
    e_fp = 100 * abs(meas["footprint"] / pred["footprint"] - 1)
    e_st = 100 * abs(meas["stored"] / pred["stored"] - 1)
    planner_errors[f"referência {f} (footprint)"] = e_fp
    planner_errors[f"referência {f} (guardado)"] = e_st
    print(f"{FORMAT_LABELS[f]:<20}{pred['footprint'] / 2**20:>10.2f}{meas['footprint'] / 2**20:>10.2f}{e_fp:>7.2f}%  |"
          f"{pred['stored'] / 2**20:>10.2f}{meas['stored'] / 2**20:>10.2f}{e_st:>7.2f}%")
if on_gpu:
    torch.cuda.empty_cache()
planner_errors[f"{run_id} {fmt} (footprint, seção 3)"] = run_err
planner_max_error_pct = max(planner_errors.values())
print(f"\npior erro: {planner_max_error_pct:.3f}% ({max(planner_errors, key=planner_errors.get)})")
claim("planejador erra < 5% nos pesos", planner_max_error_pct < 5, measured=planner_max_error_pct)

# %% [markdown]
# ## 6. Um 7B de verdade, sem baixar: medir na GPU
#
# Para ver os números reais de um 7B sem baixar 13 GB nem aceitar licença, montamos um **Llama-2-7B com pesos
# aleatórios** a partir da configuração: `write_random_checkpoint` grava um checkpoint em shards de safetensors (fp16,
# gerado tensor a tensor, sem montar o modelo inteiro), e o `from_pretrained` carrega dele em fp16, INT8 e NF4 + DQ pelo
# mesmo caminho que um checkpoint do Hub. A memória não depende dos valores dos pesos, só dos formatos; a velocidade
# também não. Com um prompt de 128 tokens medimos o pico de memória alocada na GPU e comparamos o footprint com o
# planejador.
#
# Só roda com GPU; a T4 do Colab mede o que o planejador disser que cabe nela.

# %%
gpu_7b = {}
targets_7b = {"fp16": 13.0, "int8": 7.0, "nf4-dq": 4.0}   # GiB de pico alocado que esta seção confere
if on_gpu and RUN_7B_FROM_CONFIG:
    cfg7 = load_config(LLAMA2_7B_CONFIG)
    hw_now = detect_hardware(SCRATCH_DIR or tempfile.gettempdir())
    plan7 = plan_memory(cfg7, hardware=hw_now, context_tokens=PROMPT_TOKENS_7B + NEW_TOKENS_7B,
                        formats=tuple(targets_7b), name="Llama-2-7B (pesos aleatórios)")
    print(plan7)
    runnable = [f for f in targets_7b if plan7[f].verdict == "gpu"]
    for f in targets_7b:
        if f not in runnable:
            print(f"pulando {FORMAT_LABELS[f]}: {plan7[f].verdict_text} nesta GPU")
    ckpt7 = Path(tempfile.mkdtemp(prefix="llama2_7b_aleatorio_", dir=SCRATCH_DIR))
    start = time.perf_counter()
    write_random_checkpoint(cfg7, ckpt7, "fp16", max_shard_gib=2.0, seed=SEED, device=device)
    shards7 = sorted(ckpt7.glob("*.safetensors"))
    print(f"checkpoint aleatório: {sum(s.stat().st_size for s in shards7) / 2**30:.2f} GiB em {len(shards7)} shards "
          f"({time.perf_counter() - start:.0f} s)")
    quant7 = {"fp16": None, "int8": BitsAndBytesConfig(load_in_8bit=True),
              "nf4-dq": BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                           bnb_4bit_compute_dtype=torch.float16)}
    prompt7 = torch.randint(3, cfg7.vocab_size, (1, PROMPT_TOKENS_7B), generator=torch.Generator().manual_seed(SEED))
    for f in runnable:
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        base_mb = torch.cuda.memory_allocated() / 2**20
        kw = {"dtype": torch.float16, "device_map": {"": 0}}
        if quant7[f] is not None:
            kw["quantization_config"] = quant7[f]
        start = time.perf_counter()
        m = AutoModelForCausalLM.from_pretrained(ckpt7, **kw).eval()
        load_s = time.perf_counter() - start
        load_peak = torch.cuda.max_memory_allocated() / 2**30
        meas = measured_weight_bytes(m)
        ids = prompt7.to(m.device)
        gen_kw = dict(attention_mask=torch.ones_like(ids), do_sample=False, pad_token_id=0)
        with torch.inference_mode():
            m.generate(ids, max_new_tokens=2, min_new_tokens=2, **gen_kw)   # aquecimento
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            m.generate(ids, max_new_tokens=NEW_TOKENS_7B, min_new_tokens=NEW_TOKENS_7B, **gen_kw)
            torch.cuda.synchronize()
        gen_s = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated() / 2**30
        p = plan7[f]
        gpu_7b[f] = {
            "footprint_gib": meas["footprint"] / 2**30, "stored_gib": meas["stored"] / 2**30,
            "peak_allocated_gib": peak, "load_peak_allocated_gib": load_peak, "allocated_before_mib": base_mb,
            "tokens_per_s": NEW_TOKENS_7B / gen_s, "load_seconds": load_s,
            "planner_footprint_gib": p.footprint_bytes / 2**30, "planner_stored_gib": p.weights_bytes / 2**30,
            "planner_total_gib": p.total_bytes / 2**30,
            "planner_error_pct": max(100 * abs(meas["footprint"] / p.footprint_bytes - 1),
                                     100 * abs(meas["stored"] / p.weights_bytes - 1)),
        }
        planner_errors[f"7B {f} na GPU"] = gpu_7b[f]["planner_error_pct"]
        print(f"{FORMAT_LABELS[f]:<20} footprint {gpu_7b[f]['footprint_gib']:.2f} GiB (planejador "
              f"{gpu_7b[f]['planner_footprint_gib']:.2f}) | pico alocado {peak:.2f} GiB (carga {load_peak:.2f}) | "
              f"{gpu_7b[f]['tokens_per_s']:.1f} tokens/s | carga {load_s:.0f} s")
        del m
        gc.collect()
        torch.cuda.empty_cache()
    shutil.rmtree(ckpt7, ignore_errors=True)
    for f, r in gpu_7b.items():
        assert r["planner_error_pct"] < 5, f"{f}: o planejador erra {r['planner_error_pct']:.2f}% no 7B"
    planner_max_error_pct = max(planner_errors.values())
else:
    reason = ("não há GPU nesta máquina" if not on_gpu else "RUN_7B_FROM_CONFIG=False")
    print(f"Pulando a medida do 7B montado da configuração: {reason}. Ela carrega ~13 GiB (fp16) numa GPU.")


def claim_peak(name, f):
    """A afirmação sobre o pico do formato f, ou por que ela não foi conferida nesta execução."""
    if f in gpu_7b:
        claim(name, gpu_7b[f]["peak_allocated_gib"] <= targets_7b[f], measured=gpu_7b[f]["peak_allocated_gib"])
    else:
        claim_skipped(name, "o 7B não foi medido nesta execução" if not gpu_7b else "não coube nesta GPU")


claim_peak("(GPU) 7B em fp16 com pico <= 13,0 GiB", "fp16")
claim_peak("(GPU) 7B em INT8 com pico <= 7,0 GiB", "int8")
claim_peak("(GPU) 7B em NF4 + DQ com pico <= 4,0 GiB", "nf4-dq")

# %% [markdown]
# ## 7. Quando não cabe
#
# O planejador também responde "e se". As saídas, da mais barata para a mais cara:
#
# 1. **Contexto menor ou lote menor**: o cache KV cresce linearmente com os dois (notebook 05).
# 2. **Formato menor**: NF4 + DQ ocupa ~1/4 do fp16 (seção 1).
# 3. **Modelo menor**: um 3B em NF4 cabe até numa GPU de 4 GB; a qualidade cai, a velocidade sobe.
# 4. **Offload** para a RAM ou o disco (notebook 03): roda, mas cada token relê os pesos offloaded.
# 5. **Outra máquina**: um Space ZeroGPU (notebook 00) ou uma GPU maior.
#
# Por exemplo, o 7B na T4 com contexto de 32 mil tokens, e um 13B na T4:

# %%
long_ctx = plan_memory(LLAMA2_7B_CONFIG, hardware="colab_t4", context_tokens=32768, name="Llama-2-7B, 32k tokens")
print(long_ctx.table())
print(long_ctx.explanation)
print()
big = plan_memory(LLAMA2_13B_CONFIG, hardware="colab_t4", context_tokens=CONTEXT_TOKENS, name="Llama-2-13B")
print(big.table())
print(big.explanation)

# %% [markdown]
# ## Exercícios
#
# **Exercício 1.** Use `plan_memory` para achar o **maior contexto** (múltiplo de 1024 tokens) com que o Llama-2-13B
# (`LLAMA2_13B_CONFIG`) em NF4 + DQ ainda **cabe inteiro na GPU** de uma T4 (`hardware="colab_t4"`), lote 1.
# Dica: `plan_memory(..., formats=("nf4-dq",))["nf4-dq"].verdict == "gpu"`.

# %% curso={"exercicio": "08.1", "resposta": "resposta_1"} tags=["exercicio"]
resposta_1 = None  # substitua por um inteiro (tokens)
check("08.1", resposta_1)

# %% [markdown]
# **Exercício 2.** Quantos **bits por peso** custa uma camada linear em NF4 com dupla quantização, como o bitsandbytes
# guarda? Conte o código de 4 bits, o `absmax` de 8 bits de cada bloco de 64 pesos e a constante fp32 de cada bloco de
# 256 `absmax` (ignore as constantes que existem uma vez por tensor).

# %% curso={"exercicio": "08.2", "resposta": "resposta_2"} tags=["exercicio"]
resposta_2 = None  # substitua por um número (bits por peso)
check("08.2", resposta_2)

# %% [markdown]
# **Exercício 3.** Numa T4 (15 GiB), com os pesos do Llama-2-7B em NF4 ocupando 3,5 GiB (`get_memory_footprint` medido
# numa H100, [referências do curso](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#h100-7b)) e 1,5 GiB de reserva (contexto CUDA e ativações), quantos **tokens** de cache KV
# em fp16 cabem no resto, com lote 1? (32 camadas, 32 cabeças KV, dimensão 128.) O Llama 2 foi treinado com 4.096 tokens
# de contexto: compare.

# %% curso={"exercicio": "08.3", "resposta": "resposta_3"} tags=["exercicio"]
resposta_3 = None  # substitua por um número (tokens)
check("08.3", resposta_3)

# %% [markdown]
# ## Resumo

# %%
record("planner_max_error_pct", planner_max_error_pct)
record("planner_choice_colab_t4", plan_t4.choice)
record("planner_choice_here", fmt)
record("model_loaded", run_id)
record("load_seconds", load_seconds)
record("load_peak_rss_mb", load_peak_rss_mb)
record("tokens_per_s_chat", tokens_per_s_chat)
record("recipe_footprint_mb", recipe_footprint_mb)
record("verified_formats", len(VERIFY_FORMATS))
for f, r in gpu_7b.items():
    key = f.replace("-dq", "")
    record(f"gpu_7b_peak_gib_{key}", r["peak_allocated_gib"])
    record(f"gpu_7b_footprint_gib_{key}", r["footprint_gib"])
    record(f"gpu_7b_tokens_per_s_{key}", r["tokens_per_s"])
shutil.rmtree(workdir, ignore_errors=True)

# %% [markdown]
# **Para levar.** (1) Conte os pesos como a biblioteca os guarda: o que não é quantizado e as escalas pesam.
# (2) Pesos + cache KV + ativações + reserva do runtime, com folga: é isso que precisa caber. (3) Na T4, um 7B roda em
# NF4 + dupla quantização com computação em fp16, carregado shard a shard direto na GPU. (4) Meça depois de carregar e
# limpe entre modelos. (5) Quando não cabe: contexto, formato, modelo, offload, outra máquina — nessa ordem.
