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
# no Colab com T4, soma-se o download do checkpoint de 16 bits do 7B (2 bytes por parâmetro; a seção 2 imprime o
# tamanho), que leva alguns minutos.
# **Hardware.** GPU recomendada: o notebook pede uma T4 ao Colab, que roda o 7B. CPU serve: num runtime de CPU (ou
# sem acesso ao Hub) o mesmo código roda no modelo de referência do curso, e a medida do 7B com pesos aleatórios, que
# precisa de GPU, é pulada.
#
# Todo número impresso aqui é medido agora, nesta execução; números citados dizem a fonte, e a evidência guardada de
# outra execução (uma H100, na seção 1) aparece como tal, com a data e a GPU.

# %% [markdown]
# ## Parâmetros
#
# - `MODEL_ID`: o 7B *instruct* padrão é o **Llama 2 Chat 7B** da Meta (`meta-llama/Llama-2-7b-chat-hf`). Ele é
#   **restrito**: a licença é a *Llama 2 Community License*, e é preciso aceitá-la na página do modelo no Hub (com a mesma
#   conta) e fazer login no Colab (`from huggingface_hub import login; login()`, ou o segredo `HF_TOKEN`).
# - `ALT_MODEL_ID`: uma alternativa que **não pede aceite nem login**, o **Zephyr-7B-β** da Hugging Face
#   (`HuggingFaceH4/zephyr-7b-beta`, licença MIT, um Mistral-7B ajustado para conversa, com template de chat). Se o
#   padrão não puder ser lido, o notebook usa a alternativa e diz por quê.
# - **Por que não o Qwen2.5-7B?** Ele foi treinado em bf16, e os mantenedores do Qwen registram saídas só de "!!!!" (logits
#   NaN) quando ele roda em fp16 em GPUs sem bf16, como a T4 ([referências do curso](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#fp16-bf16)). O bf16 tem o
#   expoente do fp32 (vai até ~3,4×10³⁸) com 7 bits de mantissa; o fp16 tem 10 bits de mantissa mas para em 65504. Um
#   modelo treinado em bf16 pode ter ativações que passam de 65504 (o notebook 07 mostra isso numa RMSNorm): em fp16
#   elas viram infinito. Na T4 a computação é fp16, então o modelo precisa caber nessa faixa. O curso não tem uma medida
#   do Zephyr (nem do Llama 2) em fp16 numa T4, nem uma fonte que garanta que eles caibam: por isso a seção 3 confere,
#   na execução, se os logits do modelo carregado são finitos, e diz se não forem.
# - Sem acesso ao Hub, o mesmo caminho roda no modelo de referência `OFFLINE_MODEL_ID` (uma cópia que o curso traz).
# - `SMOKE=True`: uma versão rápida de cada experimento (menos tokens, menos formatos medidos).

# %% tags=["parameters"]
MODEL_ID = "meta-llama/Llama-2-7b-chat-hf"      # restrito: aceite a licença Llama 2 no Hub e faça login
ALT_MODEL_ID = "HuggingFaceH4/zephyr-7b-beta"    # MIT, sem aceite (Mistral-7B ajustado para conversa)
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
LONG_PROMPT_TOKENS_7B = 2048  # (GPU) um prefill longo, onde o cache KV e as ativações do plano pesam
SCRATCH_DIR = None           # onde gravar o checkpoint aleatório de ~13 GB (None: pasta temporária do sistema)
TORCH_THREADS = None         # None: padrão do torch

# %%
import dataclasses
import gc
import shutil
import tempfile
import time
from pathlib import Path

import torch
from transformers.utils import logging as hf_logging

# %%
from course_utils.display import chat_box
from course_utils.environment import environment_info, hub_available, pick_device, quiet_libraries
from course_utils.exercises import check
from course_utils.models import LLAMA2_7B_CONFIG, ModelNotAvailableError, load_tokenizer, resolve_model
from course_utils.offload import peak_rss_since_reset_mb, reset_peak_rss, summarize_device_map
from course_utils.planner import (
    FORMAT_LABELS,
    GPU_RESERVE_GIB,
    PRESETS,
    describe_config,
    detect_hardware,
    from_pretrained_kwargs,
    load_config,
    load_for_chat,
    measured_weight_bytes,
    memory_report,
    plan_memory,
    plan_presets,
    verdict_table,
    weight_bytes,
)
from course_utils.results import claim, claim_skipped, record

# %%
if SMOKE:  # versão rápida; numa CPU de 2 núcleos compartilhada, 1 thread evita a espera ativa do OpenMP
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
mem_start = memory_report("início", gpu=on_gpu)   # RAM do processo; com GPU, alocado, reservado e livre no driver

# %% [markdown]
# ## 1. Quanto pesa um 7B, byte a byte
#
# Um Llama-2-7B tem 6,74 bilhões de parâmetros. A conta ingênua "parâmetros × bytes" erra porque as bibliotecas não
# guardam tudo no mesmo formato. Com o bitsandbytes (via `from_pretrained(..., quantization_config=...)`):
#
# - só as camadas `nn.Linear` dos blocos são quantizadas; **embeddings, `lm_head` e normas ficam no dtype de carga**
#   (fp16 na GPU) — o transformers pula o `lm_head`, o que compartilha pesos com ele e o último módulo;
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
print(f"{'formato':<20}{'guardado':>10}{'footprint':>11}{'escalas':>9}   guardado pelo curso (H100, 23/11/2026)")
for fmt in ("fp16", "int8", "nf4", "nf4-dq"):
    w = weight_bytes(LLAMA2_7B_CONFIG, fmt, "fp16")
    ref = f"{cited[fmt]:.2f} GiB" if fmt in cited else "—"
    print(f"{FORMAT_LABELS[fmt]:<20}{w['stored'] / 2**30:>9.2f}G{w['footprint'] / 2**30:>10.2f}G"
          f"{(w['stored'] - w['footprint']) / 2**20:>7.0f}M   {ref}")
w_nf4 = weight_bytes(LLAMA2_7B_CONFIG, "nf4-dq", "fp16")
print(f"\nno NF4, {w_nf4['quantized_params'] / 1e9:.2f} B de {w_nf4['params'] / 1e9:.2f} B parâmetros são quantizados; "
      f"os outros {(w_nf4['params'] - w_nf4['quantized_params']) / 1e6:.0f} M (embeddings e lm_head) ficam em fp16")

# %% [markdown]
# A última coluna é evidência guardada: o `get_memory_footprint` medido por este notebook numa NVIDIA H100 em 23/11/2026
# ([referências do curso](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#h100-7b)), citada, não medida agora. A seção 6 mede o mesmo na GPU que
# estiver disponível. Repare que no NF4 os 262 M parâmetros que ficam em fp16 (embeddings e `lm_head`) pesam quase tanto
# quanto um bilhão de parâmetros em 4 bits.

# %% [markdown]
# ## 2. O planejador escolhe pelo hardware que ele vê
#
# Além dos pesos, a conta precisa do **cache KV** (cresce com o contexto: notebook 05), de uma **folga para ativações**
# (a maior passada, o *prefill*) e da **reserva do runtime** (o contexto CUDA ocupa memória da GPU fora do PyTorch). As
# fórmulas do planejador, para lote $b$, contexto $n$, $L$ camadas, $h$ = `hidden_size`, $i$ = `intermediate_size`,
# $V$ = vocabulário, $h_{kv}$ = cabeças KV × dimensão da cabeça e $e$ = bytes do dtype de computação (2 no fp16):
#
# - **pesos** $W$: somados tensor a tensor como a biblioteca guarda (seção 1);
# - **cache KV** $= 2 \cdot L \cdot b \cdot n \cdot h_{kv} \cdot e$ (chaves e valores de cada camada);
# - **ativações**, no *prefill*: um limite de cima do que está vivo no pico, contado no código do transformers, do
#   bitsandbytes e do PyTorch ([referências do curso](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#pico-7b)). As camadas rodam uma de cada vez, e dentro da camada a
#   atenção e o MLP também, então vale o maior momento de uma camada de um decoder estilo Llama:
#   $b \cdot n \cdot \big(3h + \max(\text{atenção}, \text{MLP})\big) \cdot e + 2 \cdot b \cdot V \cdot 4 + 32\ \text{MiB}$.
#   Os $3h$ ficam vivos a camada toda: a saída dos embeddings (o `forward` do modelo a guarda até o fim), a entrada da
#   camada e a versão normalizada dela. Atenção $= 2h + 2h_{kv} + \max(2h, 3h_{kv})$: $q$, $k$ e $v$ (com GQA, $k$ e
#   $v$ são menores) e as contas da RoPE; MLP $= h + 3i$: o fluxo residual depois da atenção, o *gate*, o *up* e a
#   ativação do *gate*. Depois, os logits da última posição em fp32 e o *workspace* do cuBLAS (32 MiB, o maior padrão
#   do PyTorch). No NF4 soma-se a maior linear desquantizada, $o \cdot k \cdot e$ (o bitsandbytes desquantiza um peso
#   por vez no *prefill*), e com dupla quantização os absmax dela em fp32. O **LLM.int8** tem buffers próprios: a
#   entrada em int8, as colunas de *outliers* (|x| > 6) em 16 bits junto com as mesmas colunas do peso desquantizadas
#   em fp32, e o resultado int32 do produto. Quantas colunas passam de 6 depende das ativações; o plano conta o pior
#   caso, todas (`int8_linear_peak_bytes`, abaixo);
# - **reserva** $R$ = 0,5 GiB (`GPU_RESERVE_GIB`): a memória da GPU que fica fora do alocador do PyTorch (o contexto
#   CUDA e os kernels que a CUDA carrega sob demanda). Um valor só, descontado **uma vez**: inteiro num preset, que dá a
#   memória total da GPU; nesta máquina, a memória livre medida já não conta o contexto que existe agora, e só o que
#   falta dele até $R$ é descontado. A célula abaixo mede o contexto. Na RAM a reserva é de 1 GiB nos presets
#   (sistema, Python e bibliotecas; 4 GiB no notebook de 16 GiB, que roda o navegador) e de 0,5 GiB nesta máquina,
#   porque a RAM "disponível" que o sistema informa já desconta o que está em uso;
# - **veredito**: cabe na GPU se $W \le C \cdot (1 - m) - R - \text{KV} - \text{ativações}$, com $C$ a memória do
#   dispositivo e $m$ = 10% de folga (fragmentação: o alocador reserva mais do que entrega). Senão, offload para a RAM
#   ou o disco, ou "impossível".
#
# As contas, como o planejador as escreve (a dos pesos de uma linear quantizada, a das ativações e a do pior caso do
# LLM.int8):

# %%
from course_utils.display import show_source
from course_utils.planner import activation_bytes, int8_linear_peak_bytes
from course_utils.planner.weights import _quantized_linear_bytes

show_source(_quantized_linear_bytes)
show_source(activation_bytes)
show_source(int8_linear_peak_bytes)

# %% [markdown]
# A seção 6 confere esses termos contra o pico medido numa GPU. Para a T4 o curso usa **um** modelo
# (`PRESETS["colab_t4"]`), com $R$ = 0,5 GiB, 10% de folga e $C$ = **14,74 GiB**. Três números circulam para a
# memória de uma T4, e só um serve para a conta
# ([referências do curso](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#colab-t4)): a NVIDIA anuncia **16 GB** de GDDR6; com o ECC ligado, o
# padrão das GPUs de datacenter, 6,25% dela guardam os bits de correção e sobram **15 GB**, o "15 GB" que se lê por
# aí; e o CUDA informa ao processo **14,74 GiB** (o "total capacity" do PyTorch numa T4 do Colab): o resto não chega
# a ele. Só esse último está ao alcance do processo, e é dele que a reserva e a folga saem; um número de painel ou de
# ficha técnica não entra na conta. O material antigo tinha limiares fixos no código: "se
# `free_memory_gb >= 12`, INT8; se `>= 6`, 4 bits; senão, `distilgpt2`". Aqui a decisão vem da conta, para o modelo e a
# máquina de agora.

# %%
hw = detect_hardware(str(workdir))
if not ALLOW_BF16:
    hw = dataclasses.replace(hw, gpu_bf16=False)
print(f"hardware visto: {hw.name} | GPU livre: {hw.gpu_gib or 0:.1f} GiB | RAM disponível: {hw.cpu_gib:.1f} GiB "
      f"| bf16 rápido: {hw.gpu_bf16 if hw.has_gpu else 'n/a'}")
if hw.has_gpu and hw.gpu_outside_gib is not None:
    print(f"fora do alocador do PyTorch agora (o contexto CUDA): {hw.gpu_outside_gib:.2f} GiB | reserva R = "
          f"{GPU_RESERVE_GIB} GiB | descontado ainda nesta máquina: {hw.gpu_reserved_gib:.2f} GiB")
if on_gpu and "T4" in torch.cuda.get_device_name(0):   # o C do modelo da T4 é o total que o CUDA informa
    cuda_total_gib = torch.cuda.get_device_properties(0).total_memory / 2**30
    print(f"esta T4: o CUDA vê {cuda_total_gib:.2f} GiB no total; o modelo da T4 usa {PRESETS['colab_t4'].gpu_gib} GiB")
    claim("(T4) o total que o CUDA vê nesta T4 é o C do modelo da T4 (14,74 GiB, a menos de 2%)",
          abs(cuda_total_gib / PRESETS["colab_t4"].gpu_gib - 1) < 0.02, measured=cuda_total_gib)
else:
    claim_skipped("(T4) o total que o CUDA vê nesta T4 é o C do modelo da T4 (14,74 GiB, a menos de 2%)",
                  "a GPU desta execução não é uma T4" if on_gpu else "sem GPU nesta execução")

# %% [markdown]
# O plano do 7B para o hardware visto agora (com o Hub, a configuração do modelo escolhido; sem ele, a do Llama-2-7B
# que o curso traz), a tabela dos vereditos nos presets e a escolha na T4:

# %%
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
print(f"\nna T4 (o modelo do curso), o planejador escolhe para o Llama-2-7B: {FORMAT_LABELS[plan_t4.choice]}")

# %% [markdown]
# Agora o modelo que vamos **carregar de verdade** nesta execução: o 7B se o Hub responde (e a licença foi aceita),
# senão o modelo de referência — o mesmo código, do plano ao `from_pretrained`.

# %%
run_id = target_id if target_id is not None else OFFLINE_MODEL_ID
plan_run = plan_memory(run_id, hardware=hw, context_tokens=CONTEXT_TOKENS)
fmt = plan_run.choice if FORMAT == "auto" else FORMAT
if fmt is None:
    raise RuntimeError("Nada cabe nesta máquina, nem com offload: veja a seção 7 (quando não cabe).")
print(plan_run)
print(f"\nformato que vamos usar: {FORMAT_LABELS[fmt]}" + (" (escolha do planejador)" if FORMAT == "auto" else " (FORMAT)"))
if run_id != OFFLINE_MODEL_ID:
    print(f"download: o checkpoint de 16 bits de {run_id} tem ~{plan_run.params * 2 / 1e9:.1f} GB "
          f"(2 bytes x {plan_run.params / 1e9:.2f} B parâmetros), baixado uma vez para o cache do Hub")

# %% [markdown]
# ## 3. Carregar, conversar, conferir a memória
#
# `from_pretrained_kwargs` traduz o plano nos argumentos do `from_pretrained`: o `dtype`, o `BitsAndBytesConfig`
# (quando o formato é quantizado), `device_map="auto"` e um `max_memory` com a memória útil do plano.
#
# **Shards de safetensors e a RAM do Colab.** O checkpoint de 16 bits de um 7B é maior que os 12,7 GB de RAM que o Colab
# grátis mostra ([referências do curso](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#colab-t4); a seção 1 dá os bytes, a célula acima o tamanho do download). O checkpoint
# vem em vários arquivos `.safetensors` (*shards*) que o transformers mapeia na memória (`mmap`) e lê tensor a tensor; com
# `device_map`, cada tensor vai direto para o dispositivo (e é quantizado lá), sem uma cópia do modelo inteiro em fp16 na
# RAM. As páginas lidas do arquivo contam no RSS enquanto ele está mapeado, mas são cache do arquivo, que o sistema pode
# descartar. Medimos o pico de RAM da carga zerando o `VmHWM` do processo antes (`/proc/self/clear_refs`).

# %%
tokenizer = load_tokenizer(run_id)
load_kwargs = from_pretrained_kwargs(plan_run, fmt, offload_folder=str(workdir / "offload"))
print({k: (v if k != "max_memory" else {d: f"{b / 2**30:.1f} GiB" for d, b in v.items()}) for k, v in load_kwargs.items()})

source = resolve_model(run_id)
mem_before = memory_report("antes de carregar", gpu=on_gpu)
peak_reset = reset_peak_rss()
start = time.perf_counter()
model = load_for_chat(source, run_id, **load_kwargs)   # from_pretrained; sem acesso, diz em português o que fazer
load_seconds = time.perf_counter() - start
mem_loaded = memory_report(f"depois de carregar ({load_seconds:.1f} s)", gpu=on_gpu)
load_peak_rss_mb = peak_rss_since_reset_mb() if peak_reset else float("nan")

# %% [markdown]
# Onde os pesos estão e quanto ocuparam: os arquivos do checkpoint, o `device_map` que o `accelerate` montou, o pico de
# RAM da carga e o footprint medido ao lado do previsto pelo planejador.

# %%
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
if on_gpu and predicted_run.verdict == "gpu":   # uma medida independente dos tensores: o que o alocador ganhou
    grew = mem_loaded["gpu_alloc_mb"] - mem_before["gpu_alloc_mb"]
    print(f"a GPU ganhou {grew:.0f} MiB alocados; o planejador previa {predicted_run.weights_bytes / 2**20:.0f} MiB de pesos")
    claim("(GPU) os pesos do plano ficam a menos de 5% do que o alocador da GPU ganhou com a carga",
          grew > 0 and abs(predicted_run.weights_bytes / 2**20 / grew - 1) < 0.05, measured=grew)
else:
    claim_skipped("(GPU) os pesos do plano ficam a menos de 5% do que o alocador da GPU ganhou com a carga",
                  "sem GPU nesta execução" if not on_gpu else "o modelo não ficou inteiro na GPU")

# %% [markdown]
# **O template de chat.** Modelos *instruct* foram treinados com um formato de conversa próprio (marcadores de papel,
# tokens especiais). `apply_chat_template` monta esse texto a partir de uma lista de mensagens; `add_generation_prompt=True`
# abre a vez do assistente. `TextStreamer` imprime cada pedaço de texto assim que ele é gerado, em vez de esperar o fim.

# %%
from transformers import TextStreamer

prompt = CHAT_PROMPT if run_id != OFFLINE_MODEL_ID else OFFLINE_CHAT_PROMPT
pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
print(tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False))


def chat_inputs(message, m):
    """A conversa de uma mensagem, montada pelo template de chat do modelo, em tokens no dispositivo de `m`."""
    return tokenizer.apply_chat_template([{"role": "user", "content": message}], add_generation_prompt=True,
                                         return_tensors="pt", return_dict=True).to(m.device)


def chat(m, label, new_tokens=MAX_NEW_TOKENS, message=None):
    """Gera a resposta a `message` (padrão: o prompt acima) com streaming; devolve tokens/s."""
    inputs = chat_inputs(prompt if message is None else message, m)
    streamer = TextStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    print(f"--- {label} ---")
    start = time.perf_counter()
    with torch.inference_mode():
        out = m.generate(**inputs, max_new_tokens=new_tokens, do_sample=False, streamer=streamer, pad_token_id=pad_id)
    seconds = time.perf_counter() - start
    new = out.shape[1] - inputs["input_ids"].shape[1]
    peak = torch.cuda.max_memory_allocated() / 2**20 if on_gpu else float("nan")
    print(f"--- {new} tokens em {seconds:.1f} s ({new / seconds:.1f} tokens/s)"
          + (f"; pico alocado na GPU {peak:.0f} MiB" if on_gpu else ""))
    return new / seconds

# %% [markdown]
# Antes de conversar, uma conferência: um modelo treinado em bf16 pode estourar o fp16, e logits NaN/infinitos viram
# "!!!!" no texto. Depois, a resposta ao prompt, em streaming.

# %%
with torch.inference_mode():
    first_logits = model(**chat_inputs(prompt, model)).logits
logits_finite = bool(torch.isfinite(first_logits).all())
print(f"logits em {first_logits.dtype}: todos finitos? {logits_finite}")
claim("os logits do modelo carregado são finitos no dtype de computação", logits_finite,
      measured=float(torch.isfinite(first_logits).float().mean()))
tokens_per_s_chat = chat(model, f"{run_id} em {FORMAT_LABELS[fmt]}")
mem_chat = memory_report("depois de gerar", gpu=on_gpu)

# %% [markdown]
# **Converse com o modelo.** `reply` é a função da caixa de chat: a mensagem passa pelo mesmo template de chat, o
# `generate` responde (guloso, sem streaming) e ela devolve só o texto novo. `chat_box` (de `course_utils.display`) põe
# um campo de texto e um botão na frente dela: no Colab, escreva e clique em **Enviar**. Executada sem interface
# (papermill, ou sem ipywidgets), a célula só responde à mensagem padrão, o prompt acima. A caixa usa o modelo desta
# seção; a seção 4 o libera da memória.

# %%
def reply(message, max_new_tokens=32):
    """A resposta do modelo carregado a uma mensagem (template de chat + generate guloso), só o texto novo."""
    inputs = chat_inputs(message, model)
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad_id)
    return tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()


chat_box(reply, prompt)

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
from transformers import BitsAndBytesConfig

compute_dtype = torch.float16 if on_gpu else torch.float32
recipe = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                            bnb_4bit_compute_dtype=compute_dtype)
planned = from_pretrained_kwargs(plan_run, "nf4-dq")["quantization_config"]
fields = ("load_in_4bit", "bnb_4bit_quant_type", "bnb_4bit_use_double_quant", "bnb_4bit_compute_dtype")
print("receita à mão:      ", {k: getattr(recipe, k) for k in fields})
print("receita do planejador:", {k: getattr(planned, k) for k in fields})

# %% [markdown]
# Se o formato da seção 3 já é a receita, nada a recarregar. Senão, a **limpeza entre modelos** (apagar as referências,
# coletar o lixo e devolver o cache da GPU ao driver) e a receita carregada com o mesmo `from_pretrained`.

# %%
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
    mem_clean = memory_report("depois da limpeza", gpu=on_gpu)
    if on_gpu:
        print(f"a limpeza deixou {mem_clean['gpu_alloc_mb'] - mem_before['gpu_alloc_mb']:.0f} MiB a mais que o início")
    recipe_model = load_for_chat(source, run_id, quantization_config=recipe, dtype=compute_dtype, device_map="auto")
    memory_report("receita NF4 + DQ carregada", gpu=on_gpu)
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
mem_end = memory_report("depois da limpeza", gpu=on_gpu)
if on_gpu:
    leftover_mb = mem_end["gpu_alloc_mb"] - mem_before["gpu_alloc_mb"]
    claim("(GPU) a limpeza devolve a memória alocada da GPU ao início (+64 MiB)", leftover_mb <= 64, measured=leftover_mb)
else:
    claim_skipped("(GPU) a limpeza devolve a memória alocada da GPU ao início (+64 MiB)", "sem GPU nesta execução")

# %% [markdown]
# ## 5. O planejador confere com a medida?
#
# No modelo de referência, carregado em cada formato de `VERIFY_FORMATS` no dispositivo desta execução, comparamos a
# previsão com (a) o `get_memory_footprint()` e (b) tudo o que o modelo guarda, escalas do bitsandbytes incluídas
# (`measured_weight_bytes`). `planner_max_error_pct` é o pior erro de todas as comparações que rodaram.

# %%
from course_utils.planner import QUANTIZED, verify_weight_predictions, weight_check_table

ref_compute = "fp16" if on_gpu else "fp32"
if fmt in measured_ref and fmt in QUANTIZED and ref_compute != plan_run.compute_dtype:
    measured_ref.pop(fmt)  # carregado com outro dtype de computação: medimos de novo
checks = verify_weight_predictions(OFFLINE_MODEL_ID, VERIFY_FORMATS, device, ref_compute, measured=measured_ref)
print(weight_check_table(checks))
planner_errors = {f"referência {f} ({what})": c[f"{key}_error_pct"] for f, c in checks.items()
                  for what, key in (("footprint", "footprint"), ("guardado", "stored"))}
planner_errors[f"{run_id} {fmt} (footprint, seção 3)"] = run_err
planner_max_error_pct = max(planner_errors.values())
print(f"\npior erro: {planner_max_error_pct:.3f}% ({max(planner_errors, key=planner_errors.get)})")
# fp32/fp16/bf16: o planejador conta o mesmo modelo que o transformers monta; a conta que pode errar é a das lineares
# quantizadas (a fórmula da seção 2 contra os tensores que o bitsandbytes criou de verdade)
quantized_errors = [c[f"{key}_error_pct"] for f, c in checks.items() if f in QUANTIZED for key in ("footprint", "stored")]
if quantized_errors:
    claim("nas lineares quantizadas, a fórmula do planejador confere com os tensores do bitsandbytes (< 2%)",
          max(quantized_errors) < 2, measured=max(quantized_errors))
else:
    claim_skipped("nas lineares quantizadas, a fórmula do planejador confere com os tensores do bitsandbytes (< 2%)",
                  "nenhum formato quantizado em VERIFY_FORMATS")

# %% [markdown]
# ## 6. Um 7B de verdade, sem baixar: medir na GPU
#
# Para ver os números reais de um 7B sem baixar o checkpoint nem aceitar licença, montamos um **Llama-2-7B com pesos
# aleatórios** a partir da configuração: `write_random_checkpoint` grava um checkpoint em shards de safetensors (fp16,
# gerado tensor a tensor, sem montar o modelo inteiro), e o `from_pretrained` carrega dele em fp16, INT8 e NF4 + DQ pelo
# mesmo caminho que um checkpoint do Hub (`measure_from_config`, em `course_utils/planner/measure.py`). Com um prompt de
# 128 tokens medimos o pico de memória alocada na GPU e comparamos **cada termo** com o planejador.
#
# Nos formatos de 16 bits e no NF4 a memória não depende dos valores dos pesos, só dos formatos. **No INT8, depende**,
# e a velocidade também: o LLM.int8 separa, a cada passada, as colunas da ativação com algum |x| > 6 e as multiplica
# em 16 bits (notebook 01), com buffers que crescem com o número dessas colunas (seção 2). Pesos aleatórios não têm as
# poucas dimensões de *outliers* sistemáticas de um LLM treinado, mas têm outra fonte de valores grandes: na entrada do
# `down_proj`, $\text{silu}(g) \cdot u$, com $g$ e $u$ gaussianos, tem cauda longa. A célula abaixo estima, por
# amostragem, quantas colunas dessa entrada devem passar de 6 com o prompt curto e com o longo. Por isso o tokens/s do
# INT8 medido aqui não representa um 7B treinado (nem para mais nem para menos), e o pico do prefill longo chega perto
# do pior caso que o plano conta.
#
# O pico medido (`max_memory_allocated`) não vê o contexto CUDA, que fica fora do alocador do PyTorch: comparamos com
# pesos + cache KV + ativações do plano, sem a reserva. Com 128 + 32 tokens o cache e as ativações são pequenos; um
# prefill de `LONG_PROMPT_TOKENS_7B` tokens confere também esses dois termos. Só roda com GPU; a T4 mede o que o
# planejador disser que cabe nela.

# %%
sigma = 0.02 * LLAMA2_7B_CONFIG["hidden_size"] ** 0.5   # gate(x) e up(x), com x normalizado (RMS 1) e pesos N(0; 0,02)
g, u = torch.randn(2, 4_000_000, generator=torch.Generator().manual_seed(SEED)) * sigma
p_outlier = float(((torch.nn.functional.silu(g) * u).abs() > 6).float().mean())
print(f"P(|silu(g)·u| > 6) ≈ {p_outlier:.2e} por valor")
for n_tokens in (PROMPT_TOKENS_7B, LONG_PROMPT_TOKENS_7B):
    print(f"prefill de {n_tokens} tokens: ~{1 - (1 - p_outlier) ** n_tokens:.0%} das colunas da entrada do down_proj "
          "com algum |x| > 6 (esperado, supondo os valores independentes)")

# %% [markdown]
# O que sai daqui, sem limiar escolhido à mão. (1) Os pesos do plano contra o que o **alocador** da GPU ganhou com a
# carga (uma medida que não conta tensores). (2) O plano (pesos + cache KV + ativações) precisa **cobrir** o pico
# medido: as ativações da seção 2 são um limite de cima, não uma estimativa, e um plano que fica abaixo do medido manda
# para a GPU um modelo que não cabe; do outro lado, ele não deve sobrar mais que 15% (um plano folgado demais recusa
# modelos que cabem). (3) O veredito da T4: para cada formato que o plano da T4 do curso manda para a GPU, o pico
# medido precisa caber no que ela oferece ao PyTorch, $C(1-m) - R$ (a conta da seção 2).

# %%
from course_utils.planner import measure_from_config, peak_table

gpu_7b = {}
formats_7b = ("fp16", "int8", "nf4-dq")
if on_gpu and RUN_7B_FROM_CONFIG:
    cfg7 = load_config(LLAMA2_7B_CONFIG)
    hw_now = detect_hardware(SCRATCH_DIR or tempfile.gettempdir())
    plan7 = plan_memory(cfg7, hardware=hw_now, context_tokens=PROMPT_TOKENS_7B + NEW_TOKENS_7B,
                        formats=formats_7b, name="Llama-2-7B (pesos aleatórios)")
    print(plan7)
    runnable = [f for f in formats_7b if plan7[f].verdict == "gpu"]
    for f in formats_7b:
        if f not in runnable:
            print(f"pulando {FORMAT_LABELS[f]}: {plan7[f].verdict_text} nesta GPU")
    plan_long = plan_memory(cfg7, hardware=hw_now, context_tokens=LONG_PROMPT_TOKENS_7B + 1, formats=formats_7b)
    # pico medido contra pesos + cache KV + ativações do plano (sem a reserva), com 128 + 32 tokens e no prefill longo
    gpu_7b = measure_from_config(cfg7, plan7, runnable, PROMPT_TOKENS_7B, NEW_TOKENS_7B, seed=SEED, scratch_dir=SCRATCH_DIR,
                                 long_prompt_tokens=LONG_PROMPT_TOKENS_7B, long_plan=plan_long)
    print(peak_table(gpu_7b, LONG_PROMPT_TOKENS_7B))
    planner_errors.update({f"7B {f} na GPU": r["planner_error_pct"] for f, r in gpu_7b.items()})
    planner_max_error_pct = max(planner_errors.values())
else:
    reason = ("não há GPU nesta máquina" if not on_gpu else "RUN_7B_FROM_CONFIG=False")
    print(f"Pulando a medida do 7B montado da configuração: {reason}. Ela carrega os pesos fp16 do 7B (seção 1) numa GPU.")


# %%
def claim_7b(name, f, test):
    """A afirmação sobre o formato f, conferida se ele foi medido; senão, pulada com o motivo."""
    if f in gpu_7b:
        ok, value = test(gpu_7b[f])
        claim(name, ok, measured=value)
    else:
        claim_skipped(name, "o 7B não foi medido nesta execução" if not gpu_7b else "não coube nesta GPU")


t4 = PRESETS["colab_t4"]
t4_room = t4.gpu_gib * 0.9 - t4.gpu_reserved_gib   # C(1 - m) - R: o que a T4 do curso oferece ao alocador
plan_t4_7b = plan_memory(LLAMA2_7B_CONFIG, hardware="colab_t4", context_tokens=PROMPT_TOKENS_7B + NEW_TOKENS_7B,
                         formats=formats_7b)
def claim_fits_t4(name, f):
    """O pico medido do formato f cabe em C(1 - m) - R da T4, se o plano da T4 o manda para a GPU."""
    if plan_t4_7b[f].verdict != "gpu":
        claim_skipped(name, f"o plano da T4 diz '{plan_t4_7b[f].verdict_text}' para este formato")
    else:
        claim_7b(name, f, lambda r: (r["peak_allocated_gib"] <= t4_room, r["peak_allocated_gib"]))


# %%
print(f"o que a T4 oferece ao alocador, C(1 - m) - R: {t4_room:.2f} GiB")
claim_fits_t4("(GPU) o pico medido do 7B em fp16 cabe no que a T4 oferece ao alocador, como o plano dela diz", "fp16")
claim_fits_t4("(GPU) o pico medido do 7B em INT8 (LLM.int8) cabe no que a T4 oferece ao alocador", "int8")
claim_fits_t4("(GPU) o pico medido do 7B em NF4 + dupla quant. cabe no que a T4 oferece ao alocador", "nf4-dq")
if gpu_7b:
    errors = [e for r in gpu_7b.values() for e in (r["peak_error_pct"], r["long_peak_error_pct"]) if e is not None]
    print(f"plano x pico medido: de {min(errors):+.2f}% a {max(errors):+.2f}%")
    claim("(GPU) o plano (pesos + KV + ativações) cobre o pico medido do 7B e não passa dele em mais de 15%",
          all(0 <= e <= 15 for e in errors), measured=min(errors))
    print("pesos do plano x alocado na carga: " + " | ".join(
        f"{FORMAT_LABELS[f]} {r['planner_weights_gib']:.2f} x {r['allocated_weights_gib']:.2f} GiB"
        for f, r in gpu_7b.items()))
    alloc_errors = [r["weights_vs_allocated_pct"] for r in gpu_7b.values()]   # None: o alocador não ganhou nada
    worst_alloc = max((e for e in alloc_errors if e is not None), key=abs, default=None)
    claim("(GPU) os pesos do plano ficam a menos de 5% do que o alocador da GPU ganhou ao carregar o 7B",
          None not in alloc_errors and abs(worst_alloc) < 5, measured=worst_alloc)
else:
    for name in ("(GPU) o plano (pesos + KV + ativações) cobre o pico medido do 7B e não passa dele em mais de 15%",
                 "(GPU) os pesos do plano ficam a menos de 5% do que o alocador da GPU ganhou ao carregar o 7B"):
        claim_skipped(name, "o 7B não foi medido nesta execução")

# %% [markdown]
# ## 7. Quando não cabe
#
# O planejador também responde "e se". As saídas, da mais barata para a mais cara:
#
# 1. **Contexto menor ou lote menor**: o cache KV cresce linearmente com os dois (notebook 05).
# 2. **Formato menor**: NF4 + DQ ocupa ~1/4 do fp16 (seção 1).
# 3. **Modelo menor**: os pesos crescem com os parâmetros (seção 1); a qualidade cai, a velocidade sobe. Rode o
#    planejador com a configuração do modelo menor para saber se ele cabe.
# 4. **Offload** para a RAM ou o disco (notebook 03): roda, mas cada token relê os pesos descarregados.
# 5. **Outra máquina**: um Space ZeroGPU (notebook 00) ou uma GPU maior.
#
# Por exemplo, o 7B na T4 com contexto de 32 mil tokens, e um 13B na T4:

# %%
from course_utils.models import LLAMA2_13B_CONFIG

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
# **Exercício 3.** Na T4 do curso (14,74 GiB de memória, 10% de folga, 0,5 GiB de reserva: seção 2), com os pesos do
# Llama-2-7B em NF4 + DQ **como guardados** (com as escalas: a coluna "guardado" da seção 1), quantos **tokens** de cache
# KV em fp16 cabem no que sobra, com lote 1? (32 camadas, 32 cabeças KV, dimensão 128; ignore as ativações.) O Llama 2
# foi treinado com 4.096 tokens de contexto: compare.

# %% curso={"exercicio": "08.3", "resposta": "resposta_3"} tags=["exercicio"]
resposta_3 = None  # substitua por um número (tokens)
check("08.3", resposta_3)

# %% [markdown]
# **Exercício 4.** O cache KV da seção 2 supõe que toda camada guarda K e V de todos os tokens. Dois truques dos modelos
# de agora mudam isso, e a configuração diz quais ele usa:
#
# - **GQA** (*grouped-query attention*): `num_key_value_heads` cabeças de K e V, compartilhadas pelas
#   `num_attention_heads` cabeças de consulta. O cache guarda só as de K e V. Sem o campo, são tantas quanto as de
#   consulta (atenção comum).
# - **Janela deslizante** (notebook 04): com `sliding_window` = $W$, uma camada guarda no máximo $W$ tokens, ou seja,
#   $\min(n, W)$. Se a configuração tiver `layer_types` (uma entrada por camada), só as camadas `"sliding_attention"`
#   usam a janela e as `"full_attention"` guardam o contexto inteiro; sem `layer_types`, a janela vale para todas (como
#   no Mistral-7B). Sem `sliding_window` (ou `None`), não há janela.
#
# A dimensão da cabeça é `head_dim` quando a configuração a traz, senão `hidden_size // num_attention_heads`. Escreva
# `meus_bytes_kv(config, contexto, lote=1, bytes_por_elemento=2)`, com `config` um `dict` com esses campos, que devolve
# os bytes do cache KV (um inteiro), somando camada a camada.

# %% curso={"exercicio": "08.4", "resposta": "meus_bytes_kv"} tags=["exercicio"]
def meus_bytes_kv(config, contexto, lote=1, bytes_por_elemento=2):
    # seu código aqui
    ...

check("08.4", meus_bytes_kv)


# %% [markdown]
# **Exercício 5.** A conta da seção 2 (`_quantized_linear_bytes`) lê o peso como o bitsandbytes o guarda: uma fila só
# de `saidas x entradas` valores, cortada em blocos. Outros formatos de 4 bits cortam **cada linha** separadamente
# (como os grupos de pesos consecutivos de uma linha do notebook 02). Escreva `meus_bytes_nf4_dq(saidas, entradas,
# bloco=64)` que devolve os bytes (um inteiro) de um peso `[saidas, entradas]` em NF4 com dupla quantização **guardado
# por linha**:
#
# - cada linha guarda os seus códigos de 4 bits, dois por byte (uma linha com número ímpar de pesos ocupa meio byte a
#   mais);
# - cada linha é cortada em blocos de `bloco` pesos (o último bloco da linha pode ser incompleto), com um `absmax` de
#   8 bits por bloco;
# - os blocos de todas as linhas, em ordem, formam grupos de 256 com uma constante fp32 cada (o último grupo pode ser
#   incompleto).
#
# Ignore as constantes que existem uma vez por tensor (o deslocamento e os mapas de níveis). Quando `entradas` é
# múltiplo de `bloco` (e par), o resultado é o da fila só; quando não é, cada linha paga o seu bloco incompleto.

# %% curso={"exercicio": "08.5", "resposta": "meus_bytes_nf4_dq"} tags=["exercicio"]
def meus_bytes_nf4_dq(saidas, entradas, bloco=64):
    # seu código aqui
    ...

check("08.5", meus_bytes_nf4_dq)

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
    record(f"gpu_7b_planned_peak_gib_{key}", r["planned_peak_gib"])
    record(f"gpu_7b_allocated_weights_gib_{key}", r["allocated_weights_gib"])
    if r["long_peak_allocated_gib"]:
        record(f"gpu_7b_long_peak_gib_{key}", r["long_peak_allocated_gib"])
        record(f"gpu_7b_planned_long_peak_gib_{key}", r["planned_long_peak_gib"])
shutil.rmtree(workdir, ignore_errors=True)

# %% [markdown]
# **Para levar.** (1) Conte os pesos como a biblioteca os guarda: o que não é quantizado e as escalas pesam.
# (2) Pesos + cache KV + ativações + reserva do runtime, com folga: é isso que precisa caber. (3) Na T4, um 7B roda em
# NF4 + dupla quantização com computação em fp16, carregado shard a shard direto na GPU. (4) Meça depois de carregar e
# limpe entre modelos. (5) Quando não cabe: contexto, formato, modelo, offload, outra máquina — nessa ordem.
