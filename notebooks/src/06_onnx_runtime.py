# %% [markdown]
# # 06 · ONNX Runtime: tirar o modelo do PyTorch e medir o que se ganha
#
# **Objetivos.** Ao fim deste notebook você vai saber:
# - exportar um LLM com `torch.onnx.export(..., dynamo=True)` com eixos dinâmicos, validar o arquivo e conferir os logits
#   contra o PyTorch;
# - o que são sessões, provedores (CPU, CUDA, TensorRT) e níveis de otimização de grafo, e ler quais fusões aconteceram;
# - quantizar dentro do ONNX Runtime (INT8 dinâmico, INT8 e INT4 só nos pesos), escrever o empacotamento de 4 bits em
#   blocos que o `MatMulNBits` lê, e medir a perplexidade de cada variante;
# - separar, com medidas, o que o INT8 dinâmico perde pelos pesos e o que perde pelas ativações (*outliers*), e conferir
#   se o kernel desta CPU satura a soma de 16 bits (nas CPUs x86 sem VNNI isso pode acontecer com o INT8 "por canal";
#   o notebook mede se acontece na sua);
# - gerar texto com cache KV pelo onnxruntime-genai (fp32 e int4) e comparar tokens/s com o PyTorch e com o teto que a
#   largura de banda da memória impõe (o *roofline*).
#
# **Pré-requisitos.** Notebooks 01 (quantização) e 05 (cache KV).
# **Tempo estimado.** 45 minutos de leitura. A execução leva alguns minutos numa CPU de 2 núcleos; na primeira vez,
# exportar, construir os grafos do builder e quantizar as variantes soma mais alguns (tudo fica em cache para a próxima
# vez). As células demoradas imprimem quanto levaram e se vieram do cache.
# **Hardware.** CPU serve (é o alvo deste notebook): num runtime de CPU, o padrão do Colab para ele, tudo roda. Com GPU,
# a seção 8 usa o provedor CUDA se o `onnxruntime-gpu` estiver instalado (o do PyPI pede a CUDA 13: seção 8).
#
# Todo número impresso aqui é medido agora, nesta execução; números de artigos vêm com a fonte.
#
# > **Outro modelo?** `MODEL_ID` aceita outro decoder no estilo Llama (Qwen2/3, Mistral, Llama...) que o transformers e o
# > model builder conheçam; o notebook confere isso logo de início e diz em português se o modelo não serve.

# %% [markdown]
# ## Parâmetros
# `SMOKE=True` é uma versão rápida de cada experimento: avalia menos tokens, gera menos e pula a perplexidade do INT8
# "por canal" do modelo inteiro. As afirmações continuam valendo nesse tamanho.

# %% tags=["parameters"]
MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOKE = False
SEED = 0
DEVICE = "auto"
EXPORT_LAYERS = 2         # camadas que o torch.onnx.export exporta (seção 1); None = o modelo inteiro (minutos na CPU)
PPL_TOKENS = 512          # tokens do texto em inglês na perplexidade (uma janela só)
PROBE_TOKENS = 256        # tokens usados para medir as ativações
PROBE_LAYERS = 4          # camadas no teste de saturação: as N de ponto-zero mais alto (maior risco); None = todas
NEW_TOKENS = 32           # tokens gerados em cada medida de velocidade
SPEED_REPEATS = 2         # repetições intercaladas de cada configuração (vale a melhor)
PER_CHANNEL_PPL = None    # perplexidade do modelo inteiro com INT8 dinâmico por canal, com e sem reduce_range
                          # (None: só se o kernel desta CPU satura, o caso que a seção 5 afirma; True: sempre)
REFRESH_CACHE = False     # True refaz exportação, builder e quantizações em vez de usar o cache

# %%
import json
import time

import matplotlib.pyplot as plt
import numpy as np
import onnx
import onnxruntime as ort
import onnxruntime_genai as og
import torch

from course_utils.data import text_token_ids
from course_utils.environment import environment_info, pick_device, quiet_libraries
from course_utils.exercises import check
from course_utils.measure import measure_latency, perplexity
from course_utils.models import load_model, load_tokenizer
from course_utils.onnx_export import require_llama_layout
from course_utils.ort import attention_head_dim, create_session, onnx_file_mb, onnx_versions, op_counts, run_logits
from course_utils.plotting import plot_bars
from course_utils.results import claim, claim_skipped, record

if SMOKE:
    PPL_TOKENS, PROBE_TOKENS, NEW_TOKENS, PER_CHANNEL_PPL = 256, 128, 16, False

# %%
quiet_libraries()
torch.set_flush_denormal(True)
torch.manual_seed(SEED)
device = pick_device(DEVICE)
print(environment_info())
print(onnx_versions())
tokenizer = load_tokenizer(MODEL_ID)
# As comparações com o ONNX Runtime na CPU usam o modelo do PyTorch na CPU, em fp32 (a seção 8 trata da GPU).
model = load_model(MODEL_ID, device="cpu", dtype=torch.float32)
cfg = model.config
require_llama_layout(model, MODEL_ID)  # model.model.layers[i].mlp.down_proj; senão, diz por que o modelo não serve
head_dim = attention_head_dim(cfg)     # cfg.head_dim, ou hidden_size // cabeças quando a configuração não o traz

# %% [markdown]
# ## 1. Exportar com `torch.onnx.export(..., dynamo=True)`
#
# ONNX é um formato de arquivo para grafos de computação: nós (`MatMul`, `Softmax`, ...) ligados por tensores, mais os
# pesos. Um arquivo ONNX roda em qualquer motor que o entenda: ONNX Runtime (CPU, CUDA, ...), TensorRT (notebook 07),
# motores de celular e de navegador.
#
# O exportador novo do PyTorch (`dynamo=True`) captura o modelo com `torch.export`, traduz cada operação para ONNX com o
# `onnxscript` e otimiza o resultado. O `torch.export` tenta primeiro o modo **não estrito**, que roda o `forward` em
# Python com tensores "de mentira" e grava as operações do ATen (sem passar pelo TorchDynamo, o rastreador do
# `torch.compile`); só se isso falha o exportador tenta o modo estrito, que usa o Dynamo. Dois cuidados:
#
# - **Eixos dinâmicos.** Sem eles o grafo fica preso ao formato do exemplo. Declaramos o lote e a sequência como
#   `torch.export.Dim`. O exemplo tem lote 2: com lote 1 o exportador trataria o 1 como caso especial e fixaria o eixo.
# - **Uma saída só.** Embrulhamos o modelo para devolver só os `logits` (sem cache KV). Geração com cache fica com o model
#   builder do onnxruntime-genai, na seção 4.
#
# O caminho "de sempre" do Hugging Face, o `optimum-onnx`, exige transformers < 4.58 e não instala ao lado do
# transformers 5 ([situação das bibliotecas](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#bibliotecas)); por isso usamos o exportador do próprio PyTorch.
#
# **Quantas camadas exportar.** O exportador decompõe, traduz e otimiza cada operação de cada camada, e o tempo cresce
# com o número de camadas (a célula abaixo imprime quanto custou por camada). Como toda camada de um decoder é igual,
# exportamos só as `EXPORT_LAYERS` primeiras, com a mesma tabela de embeddings e a mesma cabeça de saída: é o mesmo
# grafo, repetido menos vezes, e o PyTorch roda a mesma cópia cortada para a comparação. O modelo inteiro em ONNX vem do
# model builder, na seção 3, que escreve o grafo em vez de rastreá-lo. Com `EXPORT_LAYERS = None` o notebook exporta o
# modelo inteiro: uma boa forma de medir o custo você mesmo.

# %%
from course_utils.onnx_export import cached_export, truncated_copy

n_layers = min(EXPORT_LAYERS or cfg.num_hidden_layers, cfg.num_hidden_layers)
to_export = model if n_layers == cfg.num_hidden_layers else truncated_copy(model, n_layers)
print(f"exportamos {n_layers} de {cfg.num_hidden_layers} camadas (com os mesmos pesos)")
start = time.perf_counter()
onnx_path, from_cache = cached_export(to_export, f"smollm2-{n_layers}camadas", refresh=REFRESH_CACHE)
export_seconds = time.perf_counter() - start
print("reaproveitado do cache" if from_cache else
      f"exportado em {export_seconds:.1f} s ({export_seconds / n_layers:.1f} s por camada, em média)", "->", onnx_path)
print(f"tamanho em disco: {onnx_file_mb(onnx_path):.0f} MiB (pesos fp32 num arquivo .data ao lado)")

onnx.checker.check_model(str(onnx_path), full_check=True)  # estrutura, tipos e formatos conferidos
graph = onnx.load(str(onnx_path), load_external_data=False).graph
for value in list(graph.input) + list(graph.output):
    dims = [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
    print(f"  {value.name}: {dims}")
input_dims = graph.input[0].type.tensor_type.shape.dim
assert input_dims[0].dim_param and input_dims[1].dim_param, "lote e sequência deveriam ser eixos dinâmicos (simbólicos)"
print(f"onnx.checker: ok | {len(graph.node)} nós, {len(graph.initializer)} tensores de pesos")

# %% [markdown]
# Agora rodamos o arquivo com o ONNX Runtime e comparamos os logits com os do PyTorch num lote de **3** textos de
# **32** tokens (formato diferente do exemplo da exportação, para exercitar os eixos dinâmicos).

# %%
session = create_session(onnx_path)
check_ids = text_token_ids(tokenizer, "pt", 96).reshape(3, 32)
with torch.inference_mode():
    torch_logits = to_export(check_ids).logits.numpy()
ort_logits = run_logits(session, check_ids.numpy())
max_abs_logit_diff = float(np.abs(ort_logits - torch_logits).max())
argmax_agree = float((ort_logits.argmax(-1) == torch_logits.argmax(-1)).mean())
print(f"formato {ort_logits.shape} | maior diferença absoluta {max_abs_logit_diff:.2e} "
      f"(logits vão de {torch_logits.min():.1f} a {torch_logits.max():.1f}) | mesmo argmax em {argmax_agree:.1%}")
assert ort_logits.shape == torch_logits.shape
claim("logits do ONNX a <= 1e-3 do PyTorch", max_abs_logit_diff <= 1e-3, measured=max_abs_logit_diff)

# %% [markdown]
# As diferenças existem (as duas bibliotecas somam em ordens diferentes e usam kernels diferentes), mas ficam muito
# abaixo de 1e-3 em fp32 e o token mais provável é o mesmo: o grafo exportado calcula a mesma função.
#
# ## 2. Sessões, provedores e otimização de grafo
#
# Uma `InferenceSession` carrega o grafo, **otimiza** e divide os nós entre **provedores de execução** (*execution
# providers*, EPs), na ordem de preferência que você passa: `CUDAExecutionProvider` (GPU NVIDIA),
# `TensorrtExecutionProvider` (entrega subgrafos ao TensorRT, notebook 07), `CPUExecutionProvider` (sempre presente,
# pega o que os outros não aceitam). Quais existem depende do pacote instalado: `onnxruntime` é só CPU;
# `onnxruntime-gpu` traz CUDA e TensorRT.

# %%
available = ort.get_available_providers()
print("provedores deste onnxruntime:", available)
print("provedores da sessão acima:", session.get_providers())
print("entradas:", [(i.name, i.shape, i.type) for i in session.get_inputs()])
print("saídas:  ", [(o.name, o.shape, o.type) for o in session.get_outputs()])
assert "CPUExecutionProvider" in available

# %% [markdown]
# **Níveis de otimização.** `ORT_DISABLE_ALL` roda o grafo como veio. `BASIC` faz o que não depende do hardware
# (dobrar constantes, remover nós redundantes). `EXTENDED` funde padrões em operadores próprios do ORT (por exemplo
# `MatMul`+`Mul` em `FusedMatMul`, normalizações). `ALL` soma otimizações de layout específicas da CPU. Gravamos o grafo
# otimizado de cada nível, contamos os nós e medimos uma passada de 128 tokens.

# %%
from course_utils.ort import session_at_level

bench_ids = text_token_ids(tokenizer, "en", 128).numpy()
level_counts, level_ms = {}, {}
for level in ["disable", "basic", "extended", "all"]:
    s, level_counts[level], created = session_at_level(onnx_path, level)  # conta os nós do grafo que a sessão otimizou
    level_ms[level] = measure_latency(lambda s=s: s.run(["logits"], {"input_ids": bench_ids}), warmup=1,
                                      repeats=5)["median_ms"]
    diff = float(np.abs(run_logits(s, check_ids.numpy()) - torch_logits).max())
    print(f"{level:>9}: {sum(level_counts[level].values()):4d} nós | sessão criada em {created:4.1f} s | "
          f"passada de 128 tokens {level_ms[level]:6.1f} ms | dif. máx. para o PyTorch {diff:.1e}")
    assert diff <= 1e-3, f"o nível {level} mudou o resultado além de 1e-3"
    del s
new_ops = {op: n for op, n in level_counts["all"].items() if op not in level_counts["disable"]}
gone = {op: n for op, n in level_counts["disable"].items() if level_counts["all"][op] < n}
print("operadores novos no nível 'all':", new_ops)
print("operadores que diminuíram:", {op: f"{n} -> {level_counts['all'][op]}" for op, n in gone.items()})
assert sum(level_counts["all"].values()) < sum(level_counts["disable"].values()), "otimizar deveria reduzir os nós"

# %% [markdown]
# **O otimizador de transformers do ONNX Runtime** (`onnxruntime.transformers.optimizer`) procura padrões maiores:
# normalizações (LayerNorm, RMSNorm = `SimplifiedLayerNormalization`, com a soma residual =
# `SkipSimplifiedLayerNormalization`), GELU, atenção e RoPE (`RotaryEmbedding`). O tipo de modelo escolhe as regras: o
# script de Llama do próprio ONNX Runtime (`onnxruntime/transformers/models/llama/convert_to_onnx.py`) usa
# `model_type="gpt2"`, e o ORT 1.32 aceita `model_type="qwen3"` (o nome da família de decoders com RoPE, GQA e RMSNorm,
# como o nosso modelo). No `optimizer.py` do ORT 1.32 os dois usam a mesma classe (`Gpt2OnnxModel`), ou seja, as mesmas
# regras de fusão. Rodamos os dois no grafo do exportador e contamos o que cada um fundiu:

# %%
from onnxruntime.transformers.optimizer import optimize_model

from course_utils.ort import quiet_onnxruntime, session_of_optimizer_output

fusions_by_type, tf_diff_by_type = {}, {}
for model_type in ("gpt2", "qwen3"):
    start = time.perf_counter()
    with quiet_onnxruntime():
        optimized_model = optimize_model(str(onnx_path), model_type=model_type, num_heads=cfg.num_attention_heads,
                                         hidden_size=cfg.hidden_size, opt_level=0)
        fusions_by_type[model_type] = {k: v for k, v in optimized_model.get_fused_operator_statistics().items() if v}
    tf_session, tf_nodes = session_of_optimizer_output(optimized_model)
    tf_diff_by_type[model_type] = float(np.abs(run_logits(tf_session, check_ids.numpy()) - torch_logits).max())
    print(f"model_type={model_type!r} ({time.perf_counter() - start:.1f} s): {tf_nodes} nós | "
          f"fusões {fusions_by_type[model_type]} | dif. máx. para o PyTorch {tf_diff_by_type[model_type]:.1e}")
attention_fused = {t: sum(f.get(k, 0) for k in ("Attention", "MultiHeadAttention", "GroupQueryAttention", "RotaryEmbedding"))
                   for t, f in fusions_by_type.items()}
n_norms = sum(type(m).__name__.endswith("RMSNorm") for m in to_export.modules())   # 2 por camada + a final
norm_fusions = {t: (f.get("SimplifiedLayerNormalization", 0), f.get("SkipSimplifiedLayerNormalization", 0))
                for t, f in fusions_by_type.items()}
for t, (plain, skip) in norm_fusions.items():
    print(f"model_type={t!r}: {plain + skip} de {n_norms} RMSNorms fundidas ({skip} junto com a soma residual, "
          f"SkipSimplifiedLayerNormalization; {plain} sem ela) | atenção/RoPE fundidas: {attention_fused[t]}")
rmsnorm_fusions = min(plain + skip for plain, skip in norm_fusions.values())  # o menor dos dois tipos
claim("otimizador de transformers funde todas as RMSNorms do grafo (nos dois tipos) sem mudar os logits",
      rmsnorm_fusions == n_norms and max(tf_diff_by_type.values()) <= 1e-3, measured=rmsnorm_fusions)

# %% [markdown]
# A contagem acima diz quantas RMSNorms cada tipo fundiu e quantas levaram a soma residual junto. A atenção e o RoPE só
# se fundem se o grafo casar, nó a nó, com os padrões que o otimizador conhece; a contagem diz o que aconteceu com o
# grafo do `dynamo=True` nesta versão. Onde a atenção não se funde, o caminho é o **model builder** do onnxruntime-genai: em vez de
# exportar e tentar reconhecer padrões, ele **escreve** o grafo já com os operadores fundidos.
#
# ## 3. O model builder do onnxruntime-genai
#
# O builder lê o modelo do transformers e monta o grafo de decodificação: `GroupQueryAttention` (atenção com cache KV e
# RoPE dentro), `SkipSimplifiedLayerNormalization`, entradas de cache "passado" e saídas "presente". Com `precision="int4"`
# ele ainda quantiza os `MatMul` em blocos (`MatMulNBits`). Ele também grava o `genai_config.json` e o tokenizador. O
# curso chama o builder pela API, no mesmo processo (`build_genai_model`); a linha de comando equivalente aparece abaixo.
#
# O `-p int4` sozinho liga os padrões do builder (`python -m onnxruntime_genai.models.builder --help`, opções de
# `--extra_options`): `block_size=32`; `is_symmetric=true` (int4 com sinal, **sem ponto-zero**); `accuracy_level=4` para
# a CPU (a ativação é quantizada para int8 dentro do kernel; 0 para as outras EPs); e, num modelo que amarra a tabela de
# embeddings ao `lm_head` (`tie_word_embeddings`, como este), `shared_embeddings=true`: **a tabela de embeddings também
# vai para 4 bits**, uma cópia só, lida pelo `GatherBlockQuantized` e pelo `MatMulNBits` do `lm_head`. A célula abaixo lê
# essa receita do próprio grafo.

# %%
from course_utils.models import resolve_model
from course_utils.ort import build_genai_model, builder_command, int4_recipe, matmulnbits_attributes

source = resolve_model(MODEL_ID)  # a pasta do modelo (a cópia offline) ou o ID do Hub
genai_dirs = {}
for precision in ("fp32", "int4"):
    print("$", builder_command(source, precision, "cpu", f"saida-{precision}"))
    start = time.perf_counter()
    genai_dirs[precision], hit = build_genai_model(source, precision, "cpu", refresh=REFRESH_CACHE)
    print(f"{precision}: {'cache' if hit else 'construído'} em {time.perf_counter() - start:.1f} s -> {genai_dirs[precision]}")
for precision, folder in genai_dirs.items():
    counts = op_counts(folder / "model.onnx")
    shown = {k: counts[k] for k in ("GroupQueryAttention", "SkipSimplifiedLayerNormalization", "MatMul", "MatMulNBits",
                                    "RotaryEmbedding") if counts[k]}
    print(f"{precision}: {onnx_file_mb(folder / 'model.onnx'):6.0f} MiB | {sum(counts.values())} nós | {shown}")
assert op_counts(genai_dirs["fp32"] / "model.onnx")["GroupQueryAttention"] == cfg.num_hidden_layers
assert op_counts(genai_dirs["int4"] / "model.onnx")["MatMulNBits"] > 0
builder_int4 = matmulnbits_attributes(genai_dirs["int4"] / "model.onnx")
print("MatMulNBits do int4 do builder:", builder_int4)
print("receita do int4 do builder, lida do grafo:", int4_recipe(genai_dirs["int4"] / "model.onnx"))
genai_config = json.loads((genai_dirs["fp32"] / "genai_config.json").read_text())
print("entradas do decoder:", genai_config["model"]["decoder"]["inputs"])

# %% [markdown]
# **O tokenizador que o builder escreve.** O tokenizador do modelo offline veio de um GGUF convertido (veja
# `course_utils/models.py`): a conversão precisou de cuidado para a ida e volta funcionar. Conferimos que o tokenizador
# que o onnxruntime-genai lê produz **os mesmos ids** que o do transformers e devolve o texto intacto, e que o EOS bate.

# %%
from course_utils.ort import load_genai_model, tokenizer_round_trip

og_models = {precision: load_genai_model(folder) for precision, folder in genai_dirs.items()}
round_trip_texts = ["Olá, mundo! Quantização em 4 bits: ção, ü, 3,14 — The quick brown fox.",
                    "def soma(a, b):\n\treturn a + b  # espaços   e tabs",
                    "Preço: R$ 1.234,56 (≈ US$ 250); e-mail: aluno@example.com"]
rt = tokenizer_round_trip(og_models["fp32"], tokenizer, round_trip_texts)
og_tok = og.Tokenizer(og_models["fp32"])
chat = tokenizer.apply_chat_template([{"role": "user", "content": "Oi!"}], add_generation_prompt=True, tokenize=False)
special_ids_match = [int(t) for t in og_tok.encode(chat)] == tokenizer(chat, add_special_tokens=False)["input_ids"]
eos_ok = genai_config["model"]["eos_token_id"] == tokenizer.eos_token_id
print(f"ids iguais: {rt['ids_match']} | texto intacto: {rt['text_match']} | tokens especiais do chat: {special_ids_match} "
      f"| EOS {genai_config['model']['eos_token_id']} = {tokenizer.eos_token} ({tokenizer.eos_token_id}): {eos_ok}")
for failure in rt["failures"]:
    print("  ", failure)
tokenizer_ok = rt["ids_match"] and rt["text_match"] and special_ids_match and eos_ok
claim("tokenizador do builder faz ida e volta", tokenizer_ok)

# %% [markdown]
# ## 4. Quantização dentro do ONNX Runtime
#
# Receitas aplicadas ao grafo fp32 do builder (o modelo inteiro):
#
# - **INT8 dinâmico** (`quantize_dynamic`): pesos em int8 (uma escala por tensor) e **ativações quantizadas na hora**,
#   cada uma com **uma escala para o tensor inteiro** (`DynamicQuantizeLinear` + `MatMulInteger`).
# - **Os pesos do INT8 dinâmico, sem quantizar as ativações**: o mesmo grafo fp32 com os pesos trocados pelos valores
#   exatos que o INT8 dinâmico usa, `(q - ponto-zero) x escala` (`weights_of_dynamic_int8`). Mesma granularidade, mesmos
#   pesos: a diferença para o INT8 dinâmico é só a das ativações.
# - **INT8 e INT4 só nos pesos** (`MatMulNBitsQuantizer`): blocos de 32 pesos com escala e ponto-zero próprios; a ativação
#   fica em fp32 (`accuracy_level=0`) e o peso é reconstruído dentro do kernel.
# - **INT4 só nos pesos com ativação int8** (`accuracy_level=4`): os mesmos pesos int4, mas o kernel da CPU quantiza a
#   ativação para int8 **por bloco de 32** na hora da conta, para usar multiplicações inteiras.
# - **O int4 do builder** (seção 3) **não tem os mesmos pesos** que esses dois: ele é simétrico (sem ponto-zero), usa
#   `accuracy_level=4` e guarda também a tabela de embeddings em 4 bits; os dois acima têm ponto-zero e deixam a tabela
#   de embeddings em fp32 (o `MatMulNBitsQuantizer` só troca os `MatMul`). A tabela logo abaixo mostra as três receitas,
#   lidas dos grafos. Comparações de uma coisa só: pesos int4 x fp32 ("int4 só pesos" x "fp32") e ativação int8 por bloco
#   ("int4 só pesos, ativ. int8" x "int4 só pesos"). O int4 do builder muda três coisas de uma vez: ele entra rotulado, e
#   é ele que gera texto na seção 6.
#
# Medimos a perplexidade de cada um sobre os mesmos `PPL_TOKENS` tokens do texto em inglês do curso, numa janela só,
# com a mesma função `course_utils.measure.perplexity` (a sessão do ORT é "vestida" de modelo do PyTorch, `OrtCausalLM`).
# A mesma passada guarda o token mais provável de cada posição, que a seção 6 usa para o acerto do próximo token.

# %%
from course_utils.ort import cached_quantization

ppl_ids = text_token_ids(tokenizer, "en", PPL_TOKENS)
ppl_torch = perplexity(model, ppl_ids, window=PPL_TOKENS, stride=PPL_TOKENS, progress=False)
fp32_graph = genai_dirs["fp32"] / "model.onnx"
variants = {"fp32": (fp32_graph, None)}
start = time.perf_counter()
variants["int8 dinâmico"] = cached_quantization(fp32_graph, "int8_dynamic", refresh=REFRESH_CACHE)
variants["pesos do dinâmico"] = cached_quantization(fp32_graph, "int8_dynamic_weights_fp32",
                                                   int8_src=variants["int8 dinâmico"][0], refresh=REFRESH_CACHE)
for bits in (8, 4):
    variants[f"int{bits} só pesos"] = cached_quantization(fp32_graph, "weight_only", bits=bits, block_size=32,
                                                         symmetric=False, refresh=REFRESH_CACHE)
variants["int4 só pesos, ativ. int8"] = cached_quantization(fp32_graph, "weight_only", bits=4, block_size=32,
                                                            symmetric=False, accuracy_level=4, refresh=REFRESH_CACHE)
variants["int4 do builder"] = (genai_dirs["int4"] / "model.onnx", True)
print(f"quantizações: {time.perf_counter() - start:.1f} s "
      f"({sum(1 for _, hit in variants.values() if hit)} de {len(variants) - 1} vieram do cache)")
int4_recipes = {name: int4_recipe(variants[name][0]) for name in ("int4 só pesos", "int4 só pesos, ativ. int8",
                                                                  "int4 do builder")}
for name, recipe in int4_recipes.items():
    print(f"  {name:<26} " + " | ".join(f"{k}: {v}" for k, v in recipe.items()))
# %%
from course_utils.ort import OrtCausalLM

ppl_ort, size_mb, top1 = {}, {}, {}
for name, (path, _) in variants.items():
    lm = OrtCausalLM(create_session(path), head_dim=head_dim, keep_argmax=True)
    ppl_ort[name] = perplexity(lm, ppl_ids, window=PPL_TOKENS, stride=PPL_TOKENS, progress=False)
    top1[name] = lm.argmax[0][0]  # token mais provável em cada posição (uma janela, lote 1)
    size_mb[name] = onnx_file_mb(path)
    del lm
print(f"PyTorch fp32: perplexidade {ppl_torch:.2f} ({PPL_TOKENS} tokens)")
for name in ppl_ort:
    print(f"ORT {name:<26} perplexidade {ppl_ort[name]:8.2f} ({100 * (ppl_ort[name] / ppl_ort['fp32'] - 1):+6.1f}%) | "
          f"{size_mb[name]:6.0f} MiB em disco")
ax = plot_bars(list(ppl_ort), list(ppl_ort.values()), f"Perplexidade no ONNX Runtime ({PPL_TOKENS} tokens)", "perplexidade")
plt.xticks(rotation=20, ha="right")
plt.show()
# %%
weights_cost = ppl_ort["pesos do dinâmico"] / ppl_ort["fp32"]             # só o arredondamento dos pesos
activation_cost = ppl_ort["int8 dinâmico"] / ppl_ort["pesos do dinâmico"]   # só as ativações por tensor
block_activation_cost = ppl_ort["int4 só pesos, ativ. int8"] / ppl_ort["int4 só pesos"]   # ativações por bloco
print(f"INT8 dinâmico: pesos x{weights_cost:.3f}, ativações por tensor x{activation_cost:.3f} | "
      f"ativação int8 por bloco de 32 no int4: x{block_activation_cost:.3f}")
assert abs(ppl_ort["fp32"] / ppl_torch - 1) < 0.005, "o grafo fp32 do builder deveria ter a perplexidade do PyTorch"
claim("INT8 só nos pesos a menos de 2% do fp32", ppl_ort["int8 só pesos"] <= 1.02 * ppl_ort["fp32"],
      measured=ppl_ort["int8 só pesos"] / ppl_ort["fp32"])
claim("no INT8 dinâmico as ativações por tensor custam mais que os pesos", activation_cost > max(weights_cost, 1.05),
      measured=activation_cost / weights_cost)
claim("ativação int8 por bloco de 32 custa < 3% de perplexidade no int4", block_activation_cost < 1.03,
      measured=block_activation_cost)
claim("4 bits custam mais perplexidade que 8", ppl_ort["int4 só pesos"] > ppl_ort["int8 só pesos"],
      measured=ppl_ort["int4 só pesos"] / ppl_ort["int8 só pesos"])
assert size_mb["int4 só pesos"] < size_mb["int8 só pesos"] < size_mb["fp32"]

# %% [markdown]
# **Os dois "int4" no disco.** Os dois guardam o `lm_head` em 4 bits. O "int4 só pesos" guarda, além dele, a tabela de
# embeddings em fp32 (o `Gather` lê a tabela inteira); o do builder lê a tabela da mesma cópia de 4 bits do `lm_head`.
# Se é isso, a diferença de tamanho entre os dois deve ser a tabela em fp32 (mais os pontos-zero, que só o primeiro
# guarda: 4 bits a cada 32 pesos, poucos por cento). Conferimos:

# %%
emb_fp32_mb = model.get_input_embeddings().weight.numel() * 4 / 2**20
size_gap_mb = size_mb["int4 só pesos"] - size_mb["int4 do builder"]
print(f"int4 só pesos {size_mb['int4 só pesos']:.0f} MiB - int4 do builder {size_mb['int4 do builder']:.0f} MiB = "
      f"{size_gap_mb:.0f} MiB | a tabela de embeddings em fp32: {emb_fp32_mb:.0f} MiB")
if "GatherBlockQuantized" in int4_recipes["int4 do builder"]["embeddings"]:
    claim("a diferença de tamanho entre os dois int4 é a tabela de embeddings em fp32, a ±10%",
          abs(size_gap_mb / emb_fp32_mb - 1) <= 0.10, measured=size_gap_mb / emb_fp32_mb)
else:
    claim_skipped("a diferença de tamanho entre os dois int4 é a tabela de embeddings em fp32, a ±10%",
                  "o builder deixou a tabela de embeddings deste modelo em float (sem tie_word_embeddings)")

# %% [markdown]
# Leia a tabela em pares que mudam uma coisa só. **Pesos do dinâmico x fp32**: só o arredondamento dos pesos, com uma
# escala por tensor. **INT8 dinâmico x pesos do dinâmico**: os mesmos pesos, e as ativações quantizadas com uma escala
# para o tensor inteiro; é aqui que a perda aparece (as duas razões estão impressas acima). **INT4 com ativação int8 x
# INT4**: os mesmos pesos, e as ativações quantizadas por **bloco de 32**. Quantizar as ativações não é ruim em si: com
# uma escala por bloco o custo é pequeno; o que dói é uma escala só para o tensor inteiro, por causa dos *outliers* (seção
# 5). (Nos tamanhos: nas variantes só de pesos a tabela de embeddings continua em fp32, porque o `MatMulNBits` só troca os
# `MatMul`; os "pesos do dinâmico" estão em fp32, são uma ferramenta de medida, não um formato para guardar.)
#
# **O int4 por dentro: como o `MatMulNBits` guarda os pesos.** Para cada coluna `n` do peso `W` [K, N], os K valores são
# cortados em blocos de 32. Em cada bloco, com `mín` e `máx` do bloco (a faixa sempre inclui o zero):
#
# $$s = \frac{\max(0, \text{máx}) - \min(0, \text{mín})}{15},\qquad z = \text{round}\Big(\frac{-\min(0, \text{mín})}{s}\Big),
# \qquad q = \text{clip}\big(\text{round}(w / s) + z,\ 0,\ 15\big)$$
#
# e o kernel reconstrói $\hat w = (q - z)\,s$. Dois códigos de 4 bits cabem num byte: o de índice par no *nibble* baixo
# (bits 0–3), o ímpar no alto (bits 4–7). Os pontos-zero, também de 4 bits, são empacotados do mesmo jeito, por coluna.
# Escrevemos o empacotamento e conferimos contra o `MatMulNBitsQuantizer` do ORT numa `down_proj` de verdade:

# %%
def pack_int4_blocks(w, block_size=32):
    """W [K, N] fp32 -> (B uint8 [N, K/bloco, bloco/2], escalas fp32 [N, K/bloco], pontos-zero uint8 [N, ceil(blocos/2)])."""
    k, n = w.shape
    blocks = w.T.reshape(n, k // block_size, block_size)                # [N, blocos, bloco]: uma coluna por linha
    lo, hi = np.minimum(blocks.min(-1), 0), np.maximum(blocks.max(-1), 0)
    scale = np.where(hi > lo, (hi - lo) / 15, 1.0).astype(np.float32)
    zero = np.clip(np.rint(-lo / scale), 0, 15).astype(np.uint8)
    q = np.clip(np.rint(blocks / scale[..., None]) + zero[..., None], 0, 15).astype(np.uint8)
    packed = q[..., 0::2] | (q[..., 1::2] << 4)                          # par no nibble baixo, ímpar no alto
    zero = np.pad(zero, ((0, 0), (0, zero.shape[1] % 2)))               # número par de pontos-zero por coluna
    return packed, scale, zero[:, 0::2] | (zero[:, 1::2] << 4)

# %% [markdown]
# A conferência: empacotamos as primeiras 64 colunas da `down_proj` da primeira camada com a nossa função e com o
# quantizador do ORT, comparamos os bytes e rodamos um `MatMulNBits` com cada conjunto de arrays.

# %%
from course_utils.ort import matmulnbits_model, ort_int4_blocks

w_demo = model.model.layers[0].mlp.down_proj.weight.detach().numpy().T[:, :64].copy()   # [K, 64 colunas]
B, scales, zeros = pack_int4_blocks(w_demo)
ort_arrays = ort_int4_blocks(w_demo)    # o MatMulNBitsQuantizer do ORT no mesmo peso (num grafo de passagem)
x_demo = np.random.default_rng(SEED).standard_normal((8, w_demo.shape[0])).astype(np.float32)
y_ours = create_session(matmulnbits_model(B, scales, zeros)).run(None, {"X": x_demo})[0]   # um MatMulNBits só
y_ort = create_session(ort_arrays["path"]).run(None, {"X": x_demo})[0]
y_fp32 = x_demo @ w_demo
same_bytes = float((B == ort_arrays["B"]).mean())
same_as_ort = float(np.abs(y_ours - y_ort).mean() / np.abs(y_ort).mean())
int4_error = float(np.abs(y_ours - y_fp32).mean() / np.abs(y_fp32).mean())
print(f"B: {B.shape} {B.dtype} | bytes iguais aos do ORT: {same_bytes:.2%} | escalas iguais: "
      f"{np.allclose(scales, ort_arrays['scales'])}")
print(f"saída do MatMulNBits, nossos arrays x os do ORT: diferença média {same_as_ort:.2%} | erro do int4 contra o fp32: "
      f"{int4_error:.1%} | bits por peso: 4 + 32/32 (escala fp32) + 4/32 (ponto-zero) = {4 + 1 + 4 / 32:.3f}")
claim("nosso empacotamento int4 é o do ORT (>= 99% dos bytes, saída 10x mais perto dele que do fp32)",
      same_bytes >= 0.99 and same_as_ort <= 0.1 * int4_error, measured=same_bytes)

# %% [markdown]
# Os poucos bytes diferentes são empates de arredondamento: o quantizador do ORT (escrito em C++, no MLAS) arredonda alguns
# valores que caem no meio de dois degraus para o outro lado. O formato é o mesmo: o `MatMulNBits` lê os nossos arrays e
# devolve a mesma conta, a menos desses poucos degraus.

# %% [markdown]
# ## 5. Por que o INT8 dinâmico perde: *outliers* nas ativações
#
# Capturamos a entrada da `down_proj` (a última projeção do MLP) de cada camada e olhamos a razão entre o maior valor
# absoluto e a mediana. Com uma escala por tensor, a escala é ditada pelo maior valor: se ele é milhares de vezes a
# mediana, quase todos os valores "normais" caem no mesmo degrau (o do zero) e a informação some.

# %%
probe_ids = text_token_ids(tokenizer, "en", PROBE_TOKENS)
activations = {}
hooks = [layer.mlp.down_proj.register_forward_hook(
             lambda module, args, out, idx=idx: activations.__setitem__(idx, args[0][0].detach().numpy().copy()))
         for idx, layer in enumerate(model.model.layers)]
with torch.inference_mode():
    model(probe_ids)
for h in hooks:
    h.remove()
print(f"entradas da down_proj capturadas em {len(activations)} camadas, formato {activations[0].shape} (tokens x canais)")

# %% [markdown]
# Para cada camada: a razão max/mediana, a fração dos valores que caem no degrau do zero e o erro relativo da ativação
# depois de quantizar com uma escala por tensor (`dynamic_quantize_uint8`, o `DynamicQuantizeLinear` do ONNX em numpy).

# %%
from course_utils.ort import dynamic_quantize_uint8


def act_error(x, q, scale, zero_point):
    """Erro relativo médio da ativação depois de quantizar e voltar: mean|x̂ - x| / mean|x|."""
    return float(np.abs((q - zero_point) * scale - x).mean() / np.abs(x).mean())


rows = []
for idx, x in activations.items():
    q, scale, zp = dynamic_quantize_uint8(x)
    absmax = float(np.abs(x).max())
    rows.append({"layer": idx, "ratio": absmax / float(np.median(np.abs(x))), "absmax": absmax, "zero_point": zp,
                 "zero_bucket": float((q == zp).mean()), "err_tensor": act_error(x, q, scale, zp)})
worst = max(rows, key=lambda r: r["ratio"])
typical = sorted(rows, key=lambda r: r["ratio"])[len(rows) // 2]
for r in (typical, worst):
    print(f"camada {r['layer']:2d}: max|x| = {r['absmax']:8.1f} = {r['ratio']:7.0f}x a mediana | "
          f"{r['zero_bucket']:.0%} dos valores viram o degrau do zero | erro relativo da ativação {r['err_tensor']:.0%}")
ax = plot_bars([f"c{r['layer']}" for r in rows], [r["ratio"] for r in rows], "max|x| / mediana|x| na entrada da down_proj",
               "razão (escala log)", fmt="{:.0f}")
ax.set_yscale("log")
ax.set_xlabel("camada (c0 = primeira)")
ax.tick_params(axis="x", labelsize=7)
plt.show()
assert worst["ratio"] > 10 * typical["ratio"], "algumas camadas deveriam ter outliers muito maiores que a típica"
assert worst["err_tensor"] > 2 * typical["err_tensor"], "os outliers deveriam piorar o erro da escala por tensor"

# %% [markdown]
# **A lição do LLM.int8().** Dettmers et al. (2022) mostraram que, a partir de certo tamanho, os LLMs têm poucos
# **canais** (colunas da ativação) com valores enormes, sempre os mesmos; a solução deles separa esses canais e faz a
# conta deles em 16 bits, quantizando só o resto ([referências do curso](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#llm-int8)). Medimos o efeito na pior camada: escala
# por tensor, escala por token (uma por linha) e a decomposição do LLM.int8 (colunas com |x| > 6 ficam em ponto flutuante).

# %%
x = activations[worst["layer"]]
q, scale, zp = dynamic_quantize_uint8(x)
err_tensor = act_error(x, q, scale, zp)
per_token = np.zeros_like(x)
for i, row in enumerate(x):
    qr, sr, zr = dynamic_quantize_uint8(row)
    per_token[i] = (qr - zr) * sr
err_token = float(np.abs(per_token - x).mean() / np.abs(x).mean())
outlier_cols = np.where(np.abs(x).max(axis=0) > 6)[0]
outlier_rows = np.where(np.abs(x).max(axis=1) > 6)[0]
rest = x.copy()
rest[:, outlier_cols] = 0
qr, sr, zr = dynamic_quantize_uint8(rest)
mixed = (qr - zr) * sr
mixed[:, outlier_cols] = x[:, outlier_cols]
err_mixed = float(np.abs(mixed - x).mean() / np.abs(x).mean())
print(f"camada {worst['layer']}: {len(outlier_cols)} de {x.shape[1]} colunas e {len(outlier_rows)} de {x.shape[0]} "
      f"tokens têm |x| > 6 (tokens {outlier_rows[:8].tolist()})")
print(f"erro relativo da ativação — por tensor: {err_tensor:.0%} | por token: {err_token:.0%} | "
      f"LLM.int8 (outliers fora): {err_mixed:.1%}")
assert err_mixed < err_tensor / 2, "tirar as poucas colunas de outliers deveria cortar o erro pela metade ou mais"
assert err_token < err_tensor / 2, "uma escala por token deveria cortar o erro pela metade ou mais"

# %% [markdown]
# Os valores gigantes moram em poucas colunas **e** em poucos tokens (veja a contagem acima). Qualquer esquema que não
# os deixe ditar a escala de todo o resto recupera quase tudo: separar as colunas (LLM.int8) ou dar a cada token a sua
# própria escala. O `quantize_dynamic` do ONNX Runtime não faz nenhum dos dois: daí a perda. A quantização **só de
# pesos** não mexe nas ativações, e por isso não sofre.
#
# **E o INT8 dinâmico "por canal"?** Escalas por coluna de peso deveriam ajudar. Mas a conta do kernel depende da CPU:
# nas CPUs x86 **sem VNNI** (AVX2, e também AVX-512 sem a extensão VNNI), o produto `uint8 x int8` usa a instrução
# `VPMADDUBSW`, que multiplica e soma **dois a dois** num inteiro de **16 bits com saturação**. Com pesos por canal cada
# coluna usa a faixa inteira [-127, 127]; com ativações de ponto-zero alto (valores uint8 perto de 255), um par passa de
# 32767 e a conta é cortada sem aviso. Com VNNI (`VPDPBUSD`) os produtos são somados direto em 32 bits e nada satura.
# Testamos a hipótese nesta CPU: quantizamos `down_proj`s isoladas e comparamos a saída do ORT com duas simulações em
# numpy, a exata e a que satura os pares (`compare_with_simulations`; a função de saturação é `u8s8_matmul`).

# %%
from course_utils.ort import compare_with_simulations, cpu_int8_instructions, saturation_verdict

cpu = cpu_int8_instructions()  # as flags de /proc/cpuinfo
has_vnni = cpu["vnni"]
print(f"CPU com AVX2: {cpu['avx2']} | com AVX-512: {cpu['avx512']} | com VNNI: {has_vnni}")
by_zero_point = sorted(rows, key=lambda r: -r["zero_point"])
probe = sorted(r["layer"] for r in (by_zero_point if PROBE_LAYERS is None else by_zero_point[:PROBE_LAYERS]))
sat_rows = []
for idx in probe:
    w = model.model.layers[idx].mlp.down_proj.weight.detach().numpy().T   # [entrada, saída], como no MatMul
    sat_rows.append({"layer": idx, **compare_with_simulations(activations[idx], w)})
    r = sat_rows[-1]
    print(f"camada {idx:2d} (ponto-zero da ativação {r['zero_point']:3d}): erro do ORT por tensor {r['err_tensor']:6.1%}, "
          f"por canal {r['err_canal']:7.1%} | pares saturados por canal {r['sat_frac_canal']:.2e} | "
          f"ORT x simulação exata {r['ort_vs_exact_canal']:.1e}, x simulação saturada {r['ort_vs_sat_canal']:.1e}")
verdict = saturation_verdict(sat_rows)
worst_sat, saturation_explains = verdict["worst"], verdict["kind"] == "saturates"
print(f"veredito nesta CPU: {verdict['kind']}")

# %% [markdown]
# O que a medida acima diz, nesta máquina:

# %%
if verdict["kind"] == "saturates":
    print(f"O kernel desta CPU SATURA: em todas as camadas o ORT fica pelo menos 10x mais perto da simulação que satura "
          f"os pares do que da conta exata. Na camada {worst_sat['layer']}, {worst_sat['sat_frac_canal']:.2%} dos pares "
          f"saturam e o erro por canal vai a {worst_sat['err_canal']:.0%} (por tensor: {worst_sat['err_tensor']:.0%}).")
    claim("com saturação, o INT8 por canal erra mais que o por tensor e a CPU não tem VNNI",
          worst_sat["err_canal"] > 2 * worst_sat["err_tensor"] and not has_vnni, measured=worst_sat["err_canal"])
else:
    claim_skipped("com saturação, o INT8 por canal erra mais que o por tensor e a CPU não tem VNNI",
                  f"o kernel desta CPU não saturou (veredito {verdict['kind']!r}, VNNI: {has_vnni})")
    print(f"O kernel desta CPU NÃO satura (VNNI: {has_vnni}): o ORT bate com a conta exata, e aqui o por canal "
          f"erra {worst_sat['err_canal']:.1%} contra {worst_sat['err_tensor']:.1%} do por tensor na camada "
          f"{worst_sat['layer']}. Numa CPU sem VNNI, os mesmos pesos dariam outro resultado.")
claim("o ORT bate com uma das duas simulações (exata ou saturada)", verdict["kind"] != "unexplained",
      measured=verdict["kind"])

# %% [markdown]
# A correção conhecida para as CPUs sem VNNI é o `reduce_range=True`: pesos em 7 bits (a faixa do ORT é [-64, 64])
# garantem que nenhum par passe de 2 x 255 x 64 = 32640 < 32767. Quando o kernel desta CPU satura, medimos no modelo
# inteiro o INT8 dinâmico por canal com e sem ela (fora da versão rápida). Onde não há saturação, o `reduce_range` só joga
# fora um bit de precisão dos pesos, e a medida é opcional: `PER_CHANNEL_PPL = True` nos parâmetros a faz mesmo assim.

# %%
ppl_per_channel = {}
if PER_CHANNEL_PPL is None:
    PER_CHANNEL_PPL = saturation_explains
if PER_CHANNEL_PPL:
    for reduce_range in (False, True):
        path, _ = cached_quantization(fp32_graph, "int8_dynamic", per_channel=True, reduce_range=reduce_range,
                                      refresh=REFRESH_CACHE)
        lm = OrtCausalLM(create_session(path), head_dim=head_dim)
        ppl_per_channel[reduce_range] = perplexity(lm, ppl_ids, window=PPL_TOKENS, stride=PPL_TOKENS, progress=False)
        print(f"INT8 dinâmico por canal, reduce_range={reduce_range}: perplexidade {ppl_per_channel[reduce_range]:.4g}")
    if saturation_explains:
        claim("sem VNNI, reduce_range conserta o INT8 por canal", ppl_per_channel[True] < ppl_per_channel[False] / 10,
              measured=ppl_per_channel[False] / ppl_per_channel[True])
    else:
        claim_skipped("sem VNNI, reduce_range conserta o INT8 por canal", "o kernel desta CPU não satura")
else:
    why = "o kernel desta CPU não satura" if not saturation_explains else "PER_CHANNEL_PPL=False nesta execução"
    claim_skipped("sem VNNI, reduce_range conserta o INT8 por canal", why)
    print(f"Perplexidade do modelo inteiro com INT8 por canal não medida nesta execução ({why}; PER_CHANNEL_PPL=True "
          "mede mesmo assim).")

# %% [markdown]
# ## 6. Gerar com cache KV: onnxruntime-genai contra o PyTorch
#
# O onnxruntime-genai roda o laço de geração inteiro em C++: prefill, cache KV (o builder usa um buffer único que passado e
# presente compartilham), escolha do token. Medimos **só o decode** (tokens por segundo depois do prefill), gulosamente, no
# mesmo prompt, intercalando as configurações e ficando com a melhor repetição de cada uma (a máquina é compartilhada:
# a melhor repetição é a que sofreu menos interferência).
#
# Do lado do PyTorch testamos o laço do curso (`course_utils.generation.generate`, igual ao `generate` guloso, notebook
# 05) com 1 thread e com todas (numa CPU disputada por outros processos, menos threads às vezes ganham). Vale a **melhor**
# configuração do PyTorch. (`StaticCache` + `torch.compile` fica no notebook 05: compilar leva minutos numa CPU.)

# %%
from course_utils.generation import generate

prompt = "The history of clocks begins"
prompt_ids = tokenizer(prompt, return_tensors="pt").input_ids
all_threads = torch.get_num_threads()


def torch_decode(threads, new_tokens=NEW_TOKENS):
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        ids, steps = generate(model, prompt_ids, new_tokens, return_step_times=True)
    finally:
        torch.set_num_threads(previous)
    return {"new_ids": ids[0, prompt_ids.shape[1]:].tolist(), "decode_tokens_per_s": (len(steps) - 1) / sum(steps[1:])}


configs = {f"PyTorch, {t} thread{'s' if t > 1 else ''}": (lambda n=NEW_TOKENS, t=t: torch_decode(t, n))
           for t in sorted({1, all_threads})}

# %%
from course_utils.ort import genai_generate

configs["ORT genai fp32"] = lambda n=NEW_TOKENS: genai_generate(og_models["fp32"], prompt_ids, n)
configs["ORT genai int4"] = lambda n=NEW_TOKENS: genai_generate(og_models["int4"], prompt_ids, n)

for fn in configs.values():  # aquecimento curto
    fn(4)
runs = {name: [] for name in configs}
for _ in range(SPEED_REPEATS):
    for name, fn in configs.items():
        runs[name].append(fn())
speed = {name: max(r["decode_tokens_per_s"] for r in rs) for name, rs in runs.items()}

# %%
for name, rs in runs.items():
    print(f"{name:<38} melhor {speed[name]:6.1f} tokens/s | repetições: "
          + ", ".join(f"{r['decode_tokens_per_s']:.1f}" for r in rs))
torch_names = [n for n in speed if n.startswith("PyTorch")]
torch_best_name = max(torch_names, key=speed.get)
decode_tok_s_torch = speed[torch_best_name]
decode_tok_s_ort_fp32, decode_tok_s_ort_int4 = speed["ORT genai fp32"], speed["ORT genai int4"]
speedup_fp32, speedup_int4 = decode_tok_s_ort_fp32 / decode_tok_s_torch, decode_tok_s_ort_int4 / decode_tok_s_torch
plot_bars(list(speed), list(speed.values()), f"Decode guloso, {NEW_TOKENS} tokens (melhor de {SPEED_REPEATS})", "tokens/s")
plt.xticks(rotation=20, ha="right")
plt.show()
print(f"melhor PyTorch: {torch_best_name} ({decode_tok_s_torch:.1f} tokens/s)")
print(f"ORT fp32: {speedup_fp32:.2f}x o melhor PyTorch | ORT int4 (o do builder: simétrico, ativação int8, embeddings "
      f"em 4 bits): {speedup_int4:.2f}x")
claim("int4 do ORT decodifica mais rápido que o fp32 do ORT", decode_tok_s_ort_int4 > decode_tok_s_ort_fp32,
      measured=decode_tok_s_ort_int4 / decode_tok_s_ort_fp32)
claim("int4 do ORT decodifica mais rápido que o melhor PyTorch", decode_tok_s_ort_int4 > decode_tok_s_torch,
      measured=speedup_int4)

# %% [markdown]
# **O texto gerado.** O fp32 do ORT deve repetir o PyTorch token a token (mesma função, só arredondamentos diferentes). O
# int4 (o do builder: simétrico, ativação int8 por bloco e embeddings em 4 bits, seção 4) muda os pesos, então pode
# divergir depois de alguns tokens; uma divergência cedo vira bola de neve, e o texto
# continua plausível. Para medir sem depender disso, olhamos o texto de avaliação inteiro: em quantas posições o token
# mais provável de cada modelo é o próximo token de verdade (acerto do próximo token), e em quantas o int4 e o fp32
# escolhem o mesmo token.

# %%
torch_new = runs["PyTorch, 1 thread"][-1]["new_ids"]
ort_fp32_new, ort_int4_new = runs["ORT genai fp32"][-1]["new_ids"], runs["ORT genai int4"][-1]["new_ids"]


def common_prefix(a, b):
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


for name, ids in (("PyTorch", torch_new), ("ORT fp32", ort_fp32_new), ("ORT int4", ort_int4_new)):
    print(f"[{name}] {tokenizer.decode(ids)!r}")
fp32_prefix, int4_prefix = common_prefix(torch_new, ort_fp32_new), common_prefix(torch_new, ort_int4_new)
targets = ppl_ids[0, 1:].numpy()
predictions = {"fp32": top1["fp32"][:-1], "int4": top1["int4 do builder"][:-1]}  # da passada da perplexidade (seção 4)
next_token_acc = {precision: float((pred == targets).mean()) for precision, pred in predictions.items()}
int4_top1_agreement = float((predictions["int4"] == predictions["fp32"]).mean())
print(f"prefixo igual ao PyTorch: fp32 {fp32_prefix}/{NEW_TOKENS} tokens, int4 {int4_prefix}/{NEW_TOKENS}")
print(f"acerto do próximo token no texto ({PPL_TOKENS} tokens): fp32 {next_token_acc['fp32']:.1%}, "
      f"int4 {next_token_acc['int4']:.1%} ({next_token_acc['int4'] / next_token_acc['fp32']:.0%} do fp32) | "
      f"int4 e fp32 escolhem o mesmo token em {int4_top1_agreement:.0%} das posições")
ort_int4_output_ok = int4_prefix >= 1 and next_token_acc["int4"] >= 0.8 * next_token_acc["fp32"]
assert fp32_prefix >= min(16, NEW_TOKENS), "o fp32 do ORT deveria repetir o PyTorch nos primeiros tokens"
claim("int4 começa igual ao PyTorch e mantém >= 80% do acerto de próximo token do fp32", ort_int4_output_ok,
      measured=next_token_acc["int4"] / next_token_acc["fp32"])

# %% [markdown]
# ## 7. O limite da memória: tokens/s x largura de banda
#
# No decode, cada token novo passa por **todos** os pesos uma vez, e com lote 1 há pouca conta por byte lido: o gargalo
# é trazer os pesos da memória. Um teto simples: tokens/s <= largura de banda / bytes de pesos lidos por token. Medimos a
# largura de banda de leitura desta máquina (somar um tensor de 512 MiB, com todas as threads) e os bytes que os `MatMul`
# de cada grafo leem.

# %%
from course_utils.ort import matmul_weight_bytes

buffer = torch.ones(512 * 2**20 // 4)
read_ms = measure_latency(lambda: buffer.sum(), warmup=1, repeats=7)["min_ms"]
copy_target = torch.empty_like(buffer)
copy_ms = measure_latency(lambda: copy_target.copy_(buffer), warmup=1, repeats=7)["min_ms"]
read_gbs = buffer.numel() * 4 / (read_ms / 1000) / 1e9
copy_gbs = 2 * buffer.numel() * 4 / (copy_ms / 1000) / 1e9
buffer = copy_target = None  # devolve os 1 GiB
bandwidth_gbs = max(read_gbs, copy_gbs)
print(f"largura de banda medida: leitura {read_gbs:.1f} GB/s | cópia (lê + escreve) {copy_gbs:.1f} GB/s")
bytes_per_token = {p: matmul_weight_bytes(genai_dirs[p] / "model.onnx") for p in ("fp32", "int4")}
measured = {"ORT fp32": (bytes_per_token["fp32"], decode_tok_s_ort_fp32),
            f"{torch_best_name}": (bytes_per_token["fp32"], decode_tok_s_torch),
            "ORT int4": (bytes_per_token["int4"], decode_tok_s_ort_int4)}
bound = {p: bandwidth_gbs * 1e9 / bytes_per_token[p] for p in ("fp32", "int4")}
for name, (nbytes, tok_s) in measured.items():
    ceiling = bandwidth_gbs * 1e9 / nbytes
    print(f"{name:<20} {nbytes / 2**20:6.1f} MiB lidos por token -> teto {ceiling:6.1f} tokens/s | medido {tok_s:5.1f} "
          f"tokens/s ({tok_s / ceiling:.0%} do teto)")
claim("o decode fp32 do ORT não passa do teto da memória (+25%)", decode_tok_s_ort_fp32 <= 1.25 * bound["fp32"],
      measured=decode_tok_s_ort_fp32 / bound["fp32"])
assert bytes_per_token["fp32"] > 5 * bytes_per_token["int4"], "o int4 deveria ler mais de 5x menos bytes por token"

# %% [markdown]
# **O roofline.** No eixo x, os bytes lidos por token; no y, tokens/s. A reta é o teto `largura de banda / bytes`: nenhum
# ponto deveria ficar acima dela. A distância vertical até a reta é o que o decode ainda não aproveita da memória.

# %%
xs = np.geomspace(0.5 * min(bytes_per_token.values()), 2 * max(bytes_per_token.values()), 50)
fig, ax = plt.subplots(figsize=(6.5, 4))
ax.plot(xs / 2**20, bandwidth_gbs * 1e9 / xs, "k--", label=f"teto: {bandwidth_gbs:.1f} GB/s / bytes por token")
for name, (nbytes, tok_s) in measured.items():
    ax.scatter(nbytes / 2**20, tok_s, s=60, label=f"{name}: {tok_s:.0f} tokens/s")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("MiB de pesos lidos por token (escala log)")
ax.set_ylabel("tokens/s no decode (escala log)")
ax.set_title("Decode com lote 1: medido x teto da memória")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# **Por que o int4 fica mais longe do teto que o fp32?** Um modelo simples do passo: $t = t_0 + \text{bytes}/B$, com
# $t_0$ o custo que não depende dos pesos (lançar os operadores, a atenção sobre o cache, amostrar o token) e $B$ a
# largura de banda que o decode consegue de fato. Os dois pontos do ORT (fp32 e int4, o mesmo runtime) dão as duas
# incógnitas. (O int4 também faz conta a mais por byte: desquantizar e, com `accuracy_level=4`, quantizar a ativação; no
# modelo, isso entra em $t_0$ e em $B$.)

# %%
step_fp32, step_int4 = 1 / decode_tok_s_ort_fp32, 1 / decode_tok_s_ort_int4
slope = (step_fp32 - step_int4) / (bytes_per_token["fp32"] - bytes_per_token["int4"])   # segundos por byte
fixed_s = step_int4 - slope * bytes_per_token["int4"]
if slope > 0 and fixed_s > 0:
    share_int4, share_fp32 = fixed_s / step_int4, fixed_s / step_fp32
    print(f"t0 = {fixed_s * 1e3:.2f} ms por passo | B efetiva = {1 / slope / 1e9:.1f} GB/s (medida: {bandwidth_gbs:.1f})")
    print(f"No passo do int4, o custo fixo é {share_int4:.0%} e a leitura dos pesos {1 - share_int4:.0%}; no do fp32, "
          f"{share_fp32:.0%} e {1 - share_fp32:.0%}. Menos bytes só encurtam a segunda parte, e o teto só conta bytes: por "
          f"isso o int4 fica a {decode_tok_s_ort_int4 / bound['int4']:.0%} do teto e o fp32 a "
          f"{decode_tok_s_ort_fp32 / bound['fp32']:.0%}."
          + (" A banda efetiva abaixo da medida é a outra parte da distância." if 1 / slope < bandwidth_gbs * 1e9 else ""))
else:
    print(f"Os dois pontos não cabem no modelo t = t0 + bytes/B (t0 = {fixed_s * 1e3:.2f} ms, inclinação {slope:.2e} s/byte): "
          "numa máquina disputada por outros processos, as medidas oscilam demais para separar os dois termos.")

# %% [markdown]
# Numa GPU a conta é a mesma, com uma largura de banda uma ordem de grandeza maior.
#
# ## 8. O ramo CUDA
#
# Com `DEVICE="cuda"`, rodamos o grafo do `torch.onnx.export` no provedor CUDA (se o pacote `onnxruntime-gpu` estiver
# instalado) e comparamos latência e logits com o PyTorch na GPU; com o `onnxruntime-genai-cuda`, o builder monta os
# grafos fp16 e int4 para a GPU e medimos o decode. Sem esses pacotes, a célula diz o que falta. Aqui exportamos o
# modelo **inteiro** (fica em cache), não só as `EXPORT_LAYERS` camadas da seção 1: com poucas camadas, a cabeça de
# saída e a cópia dos logits dominariam a passada, e a comparação diria pouco sobre o modelo.
#
# **Comparar igual com igual.** `session.run` devolve os logits como array numpy, na memória da CPU: o tempo dele inclui
# copiar `lote x tokens x vocabulário` floats da GPU para a CPU (dezenas de MB). Do lado do PyTorch medimos também a
# passada **mais** a cópia para a CPU (`.cpu()`, que ainda sincroniza a GPU), para os dois números contarem o mesmo
# trabalho.
#
# **No Colab este ramo não roda.** A célula de instalação põe o `onnxruntime` de CPU. O `onnxruntime-gpu` 1.31/1.32 do PyPI
# é compilado para a CUDA 13, e o Colab de 2026-08 tem a CUDA 12.8 (torch 2.11.0+cu128; [referências do
# curso](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#colab-tensorrt)): o provedor CUDA não
# carregaria ali. Este ramo é para uma máquina com CUDA 13 e `pip install onnxruntime-gpu onnxruntime-genai-cuda`.

# %%
from course_utils.ort import cuda_branch_skip_reason

cuda_skip = cuda_branch_skip_reason(device)  # None se há GPU e o provedor CUDA no onnxruntime instalado
if cuda_skip:
    claim_skipped("(GPU) ORT CUDA e PyTorch na GPU escolhem os mesmos tokens", cuda_skip)
if cuda_skip == "sem GPU nesta execução":
    print("Sem GPU nesta execução (DEVICE resolveu para 'cpu'): o ramo CUDA não roda. Num ambiente com GPU e o pacote "
          "onnxruntime-gpu, a célula abaixo compara o provedor CUDA com o PyTorch na GPU.")
elif cuda_skip:
    print("Ramo CUDA pulado: há GPU, mas o onnxruntime instalado é o pacote só de CPU (provedores: "
          f"{ort.get_available_providers()}; torch com CUDA {torch.version.cuda}). O `onnxruntime-gpu` do PyPI (1.31/1.32) "
          "é compilado para a CUDA 13: numa máquina com CUDA 13, troque o pacote de CPU por `pip install onnxruntime-gpu` "
          "(e `onnxruntime-genai-cuda` para gerar com o builder em -e cuda; os pacotes de CPU e GPU não convivem). Com a "
          "CUDA 12 (o Colab tem a 12.8), o do PyPI não carrega o provedor; as builds para a CUDA 12 ficam nos feeds da "
          "Microsoft (Azure DevOps), que o curso não fixa.")

# %%
cuda_latency = None
if not cuda_skip:
    full_onnx, _ = cached_export(model, f"smollm2-{cfg.num_hidden_layers}camadas", refresh=REFRESH_CACHE)
    gpu_session = create_session(full_onnx, providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    print("provedores da sessão:", gpu_session.get_providers())
    gpu_model, gpu_ids = model.to("cuda"), torch.from_numpy(bench_ids).to("cuda")
    with torch.inference_mode():
        gpu_torch_logits = gpu_model(gpu_ids).logits.float().cpu().numpy()
        torch_ms = measure_latency(lambda: gpu_model(gpu_ids).logits.float().cpu(), warmup=2, repeats=10)["median_ms"]
    gpu_ort_logits = run_logits(gpu_session, bench_ids)
    ort_ms = measure_latency(lambda: gpu_session.run(["logits"], {"input_ids": bench_ids}), warmup=2, repeats=10)["median_ms"]
    model.to("cpu")
    gpu_diff = float(np.abs(gpu_ort_logits - gpu_torch_logits).max())
    gpu_agree = float((gpu_ort_logits.argmax(-1) == gpu_torch_logits.argmax(-1)).mean())
    cuda_latency = {"ort_ms": ort_ms, "torch_ms": torch_ms}
    print(f"passada de 128 tokens na GPU, logits copiados para a CPU: ORT CUDA {ort_ms:.1f} ms | PyTorch {torch_ms:.1f} ms "
          f"| dif. máx. {gpu_diff:.1e} | mesmo argmax em {gpu_agree:.1%}")
    # kernels diferentes (ordem das somas; o PyTorch só usa TF32 se torch.backends.cuda.matmul.allow_tf32, e o provedor
    # CUDA do ORT tem a sua opção use_tf32) mudam os logits fp32 nas últimas casas: comparamos os tokens escolhidos
    claim("(GPU) ORT CUDA e PyTorch na GPU escolhem os mesmos tokens", gpu_agree >= 0.99, measured=gpu_agree)
    faster = "o ORT CUDA" if ort_ms < torch_ms else "o PyTorch"
    print(f"Nesta GPU, com os logits copiados para a CPU nos dois lados, {faster} foi mais rápido "
          f"({min(ort_ms, torch_ms):.1f} ms contra {max(ort_ms, torch_ms):.1f} ms); noutra GPU, ou noutro tamanho, "
          "a ordem pode ser outra.")

# %%
genai_cuda_speed = {}
if device.startswith("cuda"):
    if og.is_cuda_available():
        for precision in ("fp16", "int4"):
            folder, _ = build_genai_model(source, precision, "cuda", refresh=REFRESH_CACHE)
            cuda_model = load_genai_model(folder)
            genai_generate(cuda_model, prompt_ids, 4)  # aquecimento
            genai_cuda_speed[precision] = max(genai_generate(cuda_model, prompt_ids, NEW_TOKENS)["decode_tokens_per_s"]
                                              for _ in range(SPEED_REPEATS))
            print(f"onnxruntime-genai CUDA {precision}: {genai_cuda_speed[precision]:.1f} tokens/s no decode")
            del cuda_model
    else:
        print("Geração na GPU pulada: o onnxruntime-genai instalado é o de CPU (og.is_cuda_available() é False). "
              "Para gerar na GPU: pip install onnxruntime-genai-cuda (no lugar do onnxruntime-genai).")

# %% [markdown]
# ## Exercícios
#
# **Exercício 1.** Uma CPU lê da memória a 50 GB/s (10⁹ bytes por segundo). Um modelo de 7 bilhões de parâmetros está em
# INT4 com blocos de 32 pesos e uma escala fp16 por bloco. Qual o **teto** de tokens/s no decode com lote 1?

# %% curso={"exercicio": "06.1", "resposta": "resposta_1"} tags=["exercicio"]
resposta_1 = None  # substitua por um número (tokens/s)
check("06.1", resposta_1)

# %% [markdown]
# **Exercício 2.** Escreva o caminho de volta do `MatMulNBits`: recebe os três arrays que `pack_int4_blocks` (seção 4)
# devolve, `B` uint8 [N, blocos, bloco/2], `escalas` [N, blocos] e `pontos_zero` uint8 [N, ceil(blocos/2)] (ou `None`: sem
# ponto-zero guardado, o ORT usa 8), e devolve os pesos reconstruídos `W` [K, N] em float32, com K = blocos x bloco.
# A regra vale para qualquer tamanho de bloco (o tamanho sai do formato de `B`), inclusive os que o `MatMulNBits` do ORT
# recusa (menos de 16, ou que não são potência de 2): por isso, rodar o próprio kernel não resolve, e a autocorreção
# recusa essa saída.

# %% curso={"exercicio": "06.2", "resposta": "meu_desempacotar"} tags=["exercicio"]
import numpy as np


def meu_desempacotar(B, escalas, pontos_zero):
    # seu código aqui
    ...

check("06.2", meu_desempacotar)


# %% [markdown]
# **Exercício 3.** A decomposição do LLM.int8 (seção 5), agora numa multiplicação inteira. Escreva
# `meu_llm_int8(x, w, limiar=6.0)` para `x` [M, K] e `w` [K, N] (float32) que devolve uma aproximação de `x @ w`:
# - as colunas de `x` em que algum |valor| passa de `limiar` (e as linhas correspondentes de `w`) são multiplicadas em
#   ponto flutuante;
# - o resto é quantizado em int8 simétrico **vetor a vetor**: cada **linha** de `x` com a sua escala `max|linha| / 127`, cada
#   **coluna** de `w` com a sua `max|coluna| / 127`, `q = rint(v / escala)`; multiplique os inteiros e desfaça as escalas
#   (um vetor só de zeros fica com escala 1);
# - some as duas partes.

# %% curso={"exercicio": "06.3", "resposta": "meu_llm_int8"} tags=["exercicio"]
def meu_llm_int8(x, w, limiar=6.0):
    # seu código aqui
    ...

check("06.3", meu_llm_int8)

# %% [markdown]
# ## Resumo

# %%
from course_utils.ort import variant_results

results = {  # seções 1 a 5
    "export_layers": n_layers, "export_seconds": export_seconds, "export_from_cache": from_cache,
    "max_abs_logit_diff_fp32": max_abs_logit_diff, "rmsnorm_fusions": rmsnorm_fusions,
    "onnx_nodes_disable": sum(level_counts["disable"].values()), "onnx_nodes_all": sum(level_counts["all"].values()),
    "latency_ms_level_disable": level_ms["disable"], "latency_ms_level_all": level_ms["all"],
    "tokenizer_round_trip_ok": tokenizer_ok, "ppl_tokens": PPL_TOKENS, "ppl_torch_fp32": ppl_torch,
    **variant_results("ppl_ort", ppl_ort), **variant_results("size_mb_ort", size_mb),
    "builder_int4_accuracy_level": ",".join(str(v) for v in builder_int4.get("accuracy_level", [])),
    "int4_packing_same_bytes": same_bytes, "activation_outlier_ratio_max": worst["ratio"],
    "activation_error_per_tensor_worst": err_tensor, "activation_error_llm_int8_worst": err_mixed,
    "saturation_explains_per_channel": saturation_explains, "saturation_verdict": verdict["kind"],
}
if ppl_per_channel:
    results["ppl_ort_int8_dynamic_per_channel"] = ppl_per_channel[False]
    results["ppl_ort_int8_dynamic_per_channel_reduce_range"] = ppl_per_channel[True]

# %%
results |= {  # seções 6 a 8
    "decode_tok_s_torch": decode_tok_s_torch, "decode_torch_best_config": torch_best_name,
    "decode_tok_s_ort_fp32": decode_tok_s_ort_fp32, "decode_tok_s_ort_int4": decode_tok_s_ort_int4,
    "speedup_ort_fp32_vs_torch": speedup_fp32, "speedup_ort_int4_vs_torch": speedup_int4,
    "ort_int4_output_ok": ort_int4_output_ok, "int4_prefix_tokens_equal": int4_prefix,
    "next_token_acc_ort_fp32": next_token_acc["fp32"], "next_token_acc_ort_int4": next_token_acc["int4"],
    "int4_top1_agreement_fp32": int4_top1_agreement, "memory_bandwidth_gbs": bandwidth_gbs,
    "decode_bound_tok_s_fp32": bound["fp32"], "decode_bound_tok_s_int4": bound["int4"],
    **({"latency_ms_ort_cuda": cuda_latency["ort_ms"], "latency_ms_torch_cuda": cuda_latency["torch_ms"]}
       if cuda_latency else {}),
    **{f"decode_tok_s_ort_cuda_{precision}": value for precision, value in genai_cuda_speed.items()},
}
for key, value in results.items():
    record(key, value)

# %% [markdown]
# **Para levar.** (1) `torch.onnx.export(..., dynamo=True)` com eixos dinâmicos dá um grafo que calcula a mesma função
# (logits a menos de 1e-3 dos do PyTorch); o otimizador de grafo funde o que reconhece, e o model builder escreve direto
# o grafo de decode com atenção fundida e cache KV. (2) Quantizar só os pesos (blocos de 32) é quase de graça em 8 bits; quantizar as
# ativações com uma escala por tensor esbarra nos outliers (por bloco, custa pouco), e nas CPUs x86 sem VNNI a soma de 16
# bits ainda pode saturar.
# (3) No decode com lote 1 o que manda é a memória: menos bytes por token (int4) é mais tokens por segundo.
# Próximo: **07 · TensorRT**, o mesmo arquivo ONNX consumido pelo motor da NVIDIA.
