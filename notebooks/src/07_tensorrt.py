# %% [markdown]
# # 07 · TensorRT: os caminhos que existem e qual usar numa T4
#
# **Objetivos.** Ao fim deste notebook você vai saber:
# - quais caminhos levam um modelo do PyTorch ao TensorRT em 2026 (Torch-TensorRT, ONNX -> TensorRT, provedor TensorRT
#   do ONNX Runtime, TensorRT-LLM) e qual serve a quem tem uma T4 no Colab;
# - montar um *engine* em fp16 com formato fixo e com um **perfil de otimização** para formatos dinâmicos;
# - medir latência contra o PyTorch *eager* e contra o `torch.compile`, conferindo que as saídas concordam;
# - saber o que roda e o que não roda onde não há TensorRT, sem inventar número.
#
# **Pré-requisitos.** Notebook 06 (exportação para ONNX).
# **Tempo estimado.** 30 minutos de leitura; a execução leva uns 4 minutos numa CPU de 2 núcleos e poucos minutos numa T4.
# **Hardware.** GPU NVIDIA recomendada (as seções de TensorRT só rodam com GPU e o TensorRT instalado). Na CPU o notebook
# roda inteiro: exporta o ONNX, compara com o `torch.compile` e diz, célula a célula, o que foi pulado e por quê.
#
# Todo número impresso aqui é medido agora, nesta execução; um número de TensorRT só aparece se foi medido.

# %%
# Pacotes extras (só no Colab). O TensorRT e o Torch-TensorRT só fazem sentido com GPU; o Torch-TensorRT precisa
# casar com a versão do torch do Colab, então pedimos a versão igual à do torch instalado e, se ela não existir,
# o notebook segue sem ele (as células de TensorRT dizem que foram puladas).
import subprocess, sys
if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "onnx==1.23.2", "onnxscript==0.7.2",
                    "onnxruntime==1.32.0"], check=True)
    import torch
    if torch.cuda.is_available():
        torch_version = torch.__version__.split("+")[0]
        done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "tensorrt-cu12",
                               f"torch-tensorrt=={torch_version}", "--no-deps"])
        print("Torch-TensorRT instalado." if done.returncode == 0 else
              f"Não há torch-tensorrt=={torch_version} no PyPI: as células de Torch-TensorRT serão puladas.")

# %% [markdown]
# ## Parâmetros
# `SMOKE=True` reduz as cargas para a CI: exporta e compila só as 2 primeiras camadas do modelo (mesmos pesos).

# %% tags=["parameters"]
MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOKE = False
SEED = 0
DEVICE = "auto"
EXPORT_LAYERS = None      # None = o modelo inteiro; um número usa só as primeiras camadas (exportar e compilar é lento)
SEQ_LEN = 128             # tokens da entrada medida (formato "ótimo" do perfil)
MAX_SEQ_LEN = 512         # maior comprimento aceito pelo engine dinâmico
MAX_BATCH = 4             # maior lote aceito pelo engine dinâmico
LAT_REPEATS = 20          # repetições de cada medida de latência (vale a mediana)
REFRESH_CACHE = False

# %%
import copy
import importlib.util
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import onnx
import onnxruntime as ort
import torch

from course_utils.data import text_token_ids
from course_utils.environment import environment_info, pick_device, quiet_libraries
from course_utils.exercises import check
from course_utils.measure import measure_latency
from course_utils.models import load_model, load_tokenizer
from course_utils.onnx_export import LogitsOnly, cached_export, truncated_copy
from course_utils.ort import create_session, onnx_file_mb, run_logits
from course_utils.plotting import plot_bars
from course_utils.results import claim, record

if SMOKE:
    EXPORT_LAYERS, SEQ_LEN, LAT_REPEATS = 2, 64, 5

quiet_libraries()
torch.manual_seed(SEED)
device = pick_device(DEVICE)
print(environment_info())
tokenizer = load_tokenizer(MODEL_ID)
full_model = load_model(MODEL_ID, device="cpu", dtype=torch.float32)
n_layers = EXPORT_LAYERS or full_model.config.num_hidden_layers
model = full_model if n_layers == full_model.config.num_hidden_layers else truncated_copy(full_model, n_layers)
if model is not full_model:
    print(f"SMOKE: usamos só as {n_layers} primeiras camadas (de {full_model.config.num_hidden_layers}), com os mesmos pesos.")
skipped = []   # (seção, motivo): o resumo no fim lista tudo o que não rodou

# %% [markdown]
# ## 1. Os caminhos em 2026
#
# | caminho | o que é | formatos dinâmicos | serve numa T4? |
# |---|---|---|---|
# | **Torch-TensorRT** (`torch_tensorrt.compile(model, ir="dynamo", ...)`) | captura com `torch.export`, converte os subgrafos que o TensorRT aceita e deixa o resto no PyTorch; devolve um módulo que você chama como antes | sim, com `torch_tensorrt.Input(min_shape, opt_shape, max_shape)` | **sim** ([referências do curso](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#bibliotecas)) |
# | **ONNX -> TensorRT** (API do *builder* em Python ou `trtexec`) | lê o arquivo ONNX (o do notebook 06), monta e serializa um *engine* (`.plan`) que roda sem PyTorch | sim, com um **perfil de otimização** por entrada | sim |
# | **Provedor TensorRT do ONNX Runtime** | o ORT entrega ao TensorRT os subgrafos que ele aceita e roda o resto no CUDA/CPU | sim (perfis automáticos ou explícitos) | sim, com `onnxruntime-gpu` |
# | **TensorRT-LLM** | biblioteca de LLM em cima do TensorRT (lote em voo, cache KV paginado, kernels próprios) | sim | **não**: não suporta a T4 ([referências do curso](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#bibliotecas)) |
# | torch2trt | conversor antigo, usado em material mais velho | limitado | sem manutenção desde 2024 ([referências do curso](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#bibliotecas)); não use |
#
# **Para quem tem uma T4 no Colab:** comece pelo **Torch-TensorRT em fp16** (o modelo continua sendo um módulo do
# PyTorch, e o que o TensorRT não aceitar roda no PyTorch). Para servir sem PyTorch, exporte para ONNX e monte um engine
# com perfil de otimização (seção 5). A T4 tem *tensor cores* de fp16 e não tem bf16 rápido: use fp16.
#
# O que dá para ver sem GPU é a parte que vem **antes** do TensorRT: o ONNX que ele consome, a precisão fp16, o que
# formato fixo e perfil dinâmico significam, e o `torch.compile`, o "compilador de casa" do PyTorch, para comparação.

# %%
has_cuda = torch.cuda.is_available()
tensorrt_available = importlib.util.find_spec("tensorrt") is not None
torch_tensorrt_available = importlib.util.find_spec("torch_tensorrt") is not None
ort_trt_ep = "TensorrtExecutionProvider" in ort.get_available_providers()
print(f"GPU CUDA: {has_cuda} | tensorrt: {tensorrt_available} | torch_tensorrt: {torch_tensorrt_available} | "
      f"provedor TensorRT no onnxruntime: {ort_trt_ep}")
if has_cuda:
    props = torch.cuda.get_device_properties(0)
    print(f"GPU: {props.name}, capacidade {props.major}.{props.minor}, {props.total_memory / 2**30:.0f} GiB")
run_trt = has_cuda and device.startswith("cuda")
if not has_cuda:
    reason = "não há GPU CUDA nesta máquina (o TensorRT só roda em GPU NVIDIA)"
elif not device.startswith("cuda"):
    reason = f"DEVICE={DEVICE!r} pediu CPU"
else:
    reason = None

# %% [markdown]
# ## 2. O ONNX que o TensorRT consome
#
# O mesmo exportador do notebook 06 (`torch.onnx.export(..., dynamo=True)`, lote e sequência dinâmicos). O arquivo fica
# no cache do curso: se você rodou o notebook 06 antes, ele é reaproveitado. Conferimos o arquivo contra o PyTorch
# rodando-o no ONNX Runtime (na CPU, que sempre existe).

# %%
start = time.perf_counter()
onnx_path, from_cache = cached_export(model, f"smollm2-{n_layers}camadas", refresh=REFRESH_CACHE)
export_seconds = time.perf_counter() - start
onnx.checker.check_model(str(onnx_path), full_check=True)
dims = [d.dim_param or d.dim_value for d in onnx.load(str(onnx_path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim]
print(f"{'cache' if from_cache else 'exportado'} em {export_seconds:.1f} s | {onnx_file_mb(onnx_path):.0f} MiB | "
      f"input_ids: {dims}")
ids = text_token_ids(tokenizer, "en", SEQ_LEN)
with torch.inference_mode():
    ref_logits = model(ids).logits.numpy()
onnx_diff = float(np.abs(run_logits(create_session(onnx_path), ids.numpy()) - ref_logits).max())
print(f"ONNX (ORT, CPU) x PyTorch fp32: diferença máxima {onnx_diff:.1e}")
assert all(isinstance(d, str) for d in dims), "lote e sequência deveriam ser dinâmicos no ONNX"
claim("ONNX que o TensorRT consome confere com o PyTorch", onnx_diff <= 1e-3, measured=onnx_diff)

# %% [markdown]
# ## 3. Precisão e engine: fp16, formato fixo, perfil de otimização
#
# **fp16.** O TensorRT escolhe, camada a camada, kernels de fp16 (ou fp32, onde a precisão pede). O fp16 tem 10 bits de
# mantissa e **não passa de 65504**: se alguma ativação passar disso, vira infinito. Medimos as duas coisas no PyTorch
# (na CPU): o maior valor absoluto que aparece dentro do modelo, e quanto os logits mudam com os pesos e as contas em fp16.

# %%
largest = {"value": 0.0, "where": ""}
def track(name):
    def hook(module, args, out):
        tensor = out[0] if isinstance(out, tuple) else out
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point():
            value = float(tensor.abs().max())
            if value > largest["value"]:
                largest.update(value=value, where=name)
    return hook
hooks = [m.register_forward_hook(track(n)) for n, m in model.named_modules() if n]
with torch.inference_mode():
    model(ids)
for h in hooks:
    h.remove()
print(f"maior |ativação| em fp32: {largest['value']:.1f} (em {largest['where']}); teto do fp16: 65504")
half = copy.deepcopy(model).to(torch.float16)   # uma cópia: ida e volta fp32 -> fp16 -> fp32 estragaria os pesos
with torch.inference_mode():
    half_logits = half(ids).logits.float().numpy()
del half
fp16_diff = float(np.abs(half_logits - ref_logits).max())
fp16_agree = float((half_logits.argmax(-1) == ref_logits.argmax(-1)).mean())
print(f"logits em fp16 x fp32 (PyTorch, CPU): diferença máxima {fp16_diff:.3f} | mesmo argmax em {fp16_agree:.1%}")
assert largest["value"] < 65504, "alguma ativação não caberia em fp16"
assert fp16_agree > 0.9, "fp16 deveria escolher quase sempre o mesmo token que fp32"

# %% [markdown]
# Essa diferença medida é a régua para conferir um engine fp16: esperar igualdade até 1e-5, como em fp32, seria errado.
#
# **Formato fixo x dinâmico.** Um engine de formato fixo é otimizado para um formato só (por exemplo lote 1 x 128 tokens)
# e recusa qualquer outro. Para aceitar uma faixa, o engine recebe um **perfil de otimização** por entrada: `min`, `opt`
# e `max`. O TensorRT escolhe os kernels para `opt` e garante que tudo entre `min` e `max` funciona. O perfil deste
# notebook:

# %%
profile = {"min": (1, 1), "opt": (1, SEQ_LEN), "max": (MAX_BATCH, MAX_SEQ_LEN)}
print("perfil de input_ids:", profile)
print("equivalente com trtexec (linha de comando do TensorRT):")
print(f"  trtexec --onnx={onnx_path.name} --fp16 --minShapes=input_ids:1x1 --optShapes=input_ids:1x{SEQ_LEN} "
      f"--maxShapes=input_ids:{MAX_BATCH}x{MAX_SEQ_LEN} --saveEngine=modelo.plan")

# %% [markdown]
# ## 4. A comparação que roda em qualquer lugar: `torch.compile`
#
# O `torch.compile` captura o mesmo grafo com o TorchDynamo e gera kernels com o Inductor (C++/OpenMP na CPU, Triton na
# GPU). Medimos a latência de uma passada inteira (`SEQ_LEN` tokens, lote 1) em *eager* e compilada, no mesmo dispositivo,
# e conferimos que as saídas concordam.

# %%
run_device = device
bench_model = copy.deepcopy(model).to(run_device)
if run_device.startswith("cuda"):
    bench_model = bench_model.half()   # na GPU, fp16 (é a precisão que o TensorRT vai usar)
bench_ids = ids.to(run_device)
wrapper = LogitsOnly(bench_model).eval()
with torch.inference_mode():
    eager_out = wrapper(bench_ids).float()
eager_ms = measure_latency(lambda: wrapper(bench_ids), warmup=2, repeats=LAT_REPEATS)["median_ms"]
compiled = torch.compile(wrapper)
start = time.perf_counter()
with torch.inference_mode():
    compiled(bench_ids)
compile_seconds = time.perf_counter() - start
compiled_ms = measure_latency(lambda: compiled(bench_ids), warmup=2, repeats=LAT_REPEATS)["median_ms"]
with torch.inference_mode():
    compiled_out = compiled(bench_ids).float()
compile_diff = float((compiled_out - eager_out).abs().max())
compile_agree = float((compiled_out.argmax(-1) == eager_out.argmax(-1)).float().mean())
torch_compile_speedup = eager_ms / compiled_ms
latencies = {"PyTorch eager": eager_ms, "torch.compile": compiled_ms}
print(f"{run_device}: eager {eager_ms:.1f} ms | torch.compile {compiled_ms:.1f} ms ({torch_compile_speedup:.2f}x) | "
      f"compilou em {compile_seconds:.0f} s | diferença máxima {compile_diff:.1e}, mesmo argmax em {compile_agree:.1%}")
if run_device.startswith("cuda"):  # fp16: a régua é a diferença fp16 x fp32 medida na seção 3
    assert compile_agree > 0.9 and compile_diff <= max(0.1, 2 * fp16_diff), "torch.compile mudou a função além do fp16"
else:
    assert compile_diff <= 1e-3, "torch.compile deveria calcular a mesma função"
del compiled, wrapper, bench_model

# %% [markdown]
# O ganho do `torch.compile` depende do que domina o tempo. Numa passada longa (o prefill de `SEQ_LEN` tokens) quase tudo
# são multiplicações de matrizes grandes, que o *eager* já entrega às bibliotecas otimizadas (MKL/oneDNN na CPU, cuBLAS
# na GPU); o compilador ganha ao fundir as operações pequenas em volta delas. Por isso o número acima pode ficar perto de
# 1x, ou abaixo numa CPU disputada; no decode, com um token por passo, as operações pequenas pesam mais (o notebook 05
# mede o `torch.compile` com `StaticCache` na geração). O TensorRT faz o mesmo tipo de fusão, mais a escolha de kernels
# medida na própria GPU (*autotuning*) e o fp16 nos *tensor cores*.
#
# ## 5. Torch-TensorRT (GPU)
#
# `torch_tensorrt.compile(..., ir="dynamo")` com pesos em fp16: um engine de formato fixo (lote 1 x `SEQ_LEN`) e outro
# com formato dinâmico (o perfil da seção 3). Conferimos as saídas contra o PyTorch fp16 com a régua medida na seção 3.

# %%
trt_results = {}
if reason:
    skipped.append(("5. Torch-TensorRT", reason))
    print(f"Pulado: {reason}.")
elif not torch_tensorrt_available:
    skipped.append(("5. Torch-TensorRT", "o pacote torch-tensorrt não está instalado (precisa casar com a versão do torch)"))
    print("Pulado: o torch-tensorrt não está instalado. No Colab, a primeira célula tenta instalar a versão igual à do "
          "torch; fora dele: pip install torch-tensorrt==<versão do torch> tensorrt-cu12.")
else:
    import torch_tensorrt

    gpu_wrapper = LogitsOnly(copy.deepcopy(model).to("cuda").half()).eval()
    trt_modules = {}
    gpu_ids = ids.to("cuda")
    with torch.inference_mode():
        gpu_eager = gpu_wrapper(gpu_ids).float()
    specs = {
        "Torch-TensorRT fixo": [torch_tensorrt.Input(shape=(1, SEQ_LEN), dtype=torch.int64)],
        "Torch-TensorRT dinâmico": [torch_tensorrt.Input(min_shape=profile["min"], opt_shape=profile["opt"],
                                                         max_shape=profile["max"], dtype=torch.int64)],
    }
    for name, inputs in specs.items():
        try:
            start = time.perf_counter()
            trt_module = torch_tensorrt.compile(gpu_wrapper, ir="dynamo", inputs=inputs,
                                                enabled_precisions={torch.float16}, min_block_size=1)
            build_s = time.perf_counter() - start
            with torch.inference_mode():
                out = trt_module(gpu_ids).float()
            ms = measure_latency(lambda: trt_module(gpu_ids), warmup=3, repeats=LAT_REPEATS)["median_ms"]
        except Exception as exc:  # versões do TensorRT mudam a API: dizemos o que falhou em vez de inventar número
            skipped.append((f"5. {name}", f"falhou: {type(exc).__name__}: {str(exc)[:200]}"))
            print(f"{name}: falhou ({type(exc).__name__}: {str(exc)[:200]})")
            continue
        diff = float((out - gpu_eager).abs().max())
        agree = float((out.argmax(-1) == gpu_eager.argmax(-1)).float().mean())
        trt_results[name] = {"ms": ms, "build_s": build_s, "diff": diff, "agree": agree}
        trt_modules[name] = trt_module
        latencies[name] = ms
        print(f"{name}: {ms:.2f} ms (montado em {build_s:.0f} s) | dif. máx. para o PyTorch fp16 {diff:.3f}, "
              f"mesmo argmax em {agree:.1%}")
        assert agree > 0.9, "o engine fp16 deveria escolher quase sempre o mesmo token que o PyTorch fp16"
    if "Torch-TensorRT dinâmico" in trt_modules:
        other = text_token_ids(tokenizer, "pt", 2 * 37).reshape(2, 37).to("cuda")   # outro lote e comprimento
        with torch.inference_mode():
            same = trt_modules["Torch-TensorRT dinâmico"](other).argmax(-1) == gpu_wrapper(other).argmax(-1)
        print(f"engine dinâmico com lote 2 x 37 tokens: mesmo argmax em {float(same.float().mean()):.1%}")
        assert float(same.float().mean()) > 0.9
    del gpu_wrapper, trt_modules


# %% [markdown]
# ## 6. TensorRT a partir do ONNX (GPU)
#
# A API do *builder*: o parser lê o ONNX (com os pesos no arquivo `.data` ao lado), a configuração liga o fp16 e recebe o
# perfil de otimização, e o resultado é um engine serializado que roda sem PyTorch. Para executá-lo usamos tensores do
# PyTorch como memória da GPU (`set_tensor_address`).

# %%
def build_trt_engine(onnx_file, profile_shapes, fp16=True):
    """Monta um engine do TensorRT a partir de um ONNX; devolve (engine, segundos)."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    fp16_flag = getattr(trt.BuilderFlag, "FP16", None)
    source = Path(onnx_file)
    if fp16 and fp16_flag is None:
        # TensorRT sem a opção FP16 (redes "fortemente tipadas"): a precisão vem do próprio ONNX, então convertemos
        # os pesos e as contas para fp16 mantendo entradas e saídas como estão.
        from onnxruntime.transformers.float16 import convert_float_to_float16
        half_model = convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)
        source = source.with_name("model_fp16.onnx")
        onnx.save(half_model, str(source), save_as_external_data=True, location="model_fp16.onnx.data")
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(source)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise RuntimeError("o parser do TensorRT recusou o ONNX: " + "; ".join(errors[:3]))
    config = builder.create_builder_config()
    if fp16 and fp16_flag is not None:
        config.set_flag(fp16_flag)
    trt_profile = builder.create_optimization_profile()
    trt_profile.set_shape("input_ids", *profile_shapes)
    config.add_optimization_profile(trt_profile)
    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError("o TensorRT não conseguiu montar o engine (veja as mensagens acima)")
    engine = trt.Runtime(logger).deserialize_cuda_engine(serialized)
    return engine, time.perf_counter() - start


def run_trt_engine(engine, input_ids):
    """Roda um engine com input_ids (tensor int64 na GPU); devolve os logits (tensor fp32 na GPU)."""
    context = engine.create_execution_context()
    context.set_input_shape("input_ids", tuple(input_ids.shape))
    out_shape = tuple(context.get_tensor_shape("logits"))
    logits = torch.empty(out_shape, dtype=torch.float32, device="cuda")
    context.set_tensor_address("input_ids", input_ids.data_ptr())
    context.set_tensor_address("logits", logits.data_ptr())
    stream = torch.cuda.current_stream()
    context.execute_async_v3(stream.cuda_stream)
    stream.synchronize()
    return logits


if reason:
    skipped.append(("6. TensorRT a partir do ONNX", reason))
    print(f"Pulado: {reason}.")
elif not tensorrt_available:
    skipped.append(("6. TensorRT a partir do ONNX", "o pacote tensorrt não está instalado"))
    print("Pulado: o pacote tensorrt não está instalado (pip install tensorrt-cu12, com GPU NVIDIA).")
else:
    gpu_ids = ids.to("cuda").contiguous()
    gpu_fp16 = LogitsOnly(copy.deepcopy(model).to("cuda").half()).eval()
    with torch.inference_mode():
        gpu_eager = gpu_fp16(gpu_ids).float()
    for name, shapes in {"TensorRT (ONNX) fixo": ((1, SEQ_LEN),) * 3,
                         "TensorRT (ONNX) dinâmico": (profile["min"], profile["opt"], profile["max"])}.items():
        try:
            engine, build_s = build_trt_engine(onnx_path, shapes)
            out = run_trt_engine(engine, gpu_ids)
            ms = measure_latency(lambda: run_trt_engine(engine, gpu_ids), warmup=3, repeats=LAT_REPEATS)["median_ms"]
        except Exception as exc:
            skipped.append((f"6. {name}", f"falhou: {type(exc).__name__}: {str(exc)[:200]}"))
            print(f"{name}: falhou ({type(exc).__name__}: {str(exc)[:200]})")
            continue
        diff = float((out - gpu_eager).abs().max())
        agree = float((out.argmax(-1) == gpu_eager.argmax(-1)).float().mean())
        trt_results[name] = {"ms": ms, "build_s": build_s, "diff": diff, "agree": agree}
        latencies[name] = ms
        print(f"{name}: {ms:.2f} ms (montado em {build_s:.0f} s) | dif. máx. para o PyTorch fp16 {diff:.3f}, "
              f"mesmo argmax em {agree:.1%}")
        assert agree > 0.9
    del gpu_fp16

# %% [markdown]
# ## 7. O provedor TensorRT do ONNX Runtime (GPU)
#
# Com o `onnxruntime-gpu`, basta pôr `TensorrtExecutionProvider` na frente da lista de provedores; as opções ligam o fp16
# e guardam os engines num diretório, para a próxima sessão não montar de novo.

# %%
if reason:
    skipped.append(("7. Provedor TensorRT do ONNX Runtime", reason))
    print(f"Pulado: {reason}.")
elif not ort_trt_ep:
    skipped.append(("7. Provedor TensorRT do ONNX Runtime",
                    f"o onnxruntime instalado não tem o provedor TensorRT (provedores: {ort.get_available_providers()})"))
    print("Pulado: este onnxruntime não traz o TensorrtExecutionProvider (é o pacote só de CPU, ou falta o TensorRT). "
          "Instale onnxruntime-gpu e tensorrt-cu12.")
else:
    engine_cache = onnx_path.parent / "trt-ep-cache"
    trt_options = {"trt_fp16_enable": True, "trt_engine_cache_enable": True, "trt_engine_cache_path": str(engine_cache)}
    ep_session = ort.InferenceSession(str(onnx_path), providers=[("TensorrtExecutionProvider", trt_options),
                                                                  "CUDAExecutionProvider", "CPUExecutionProvider"])
    # A armadilha: se a biblioteca do TensorRT (libnvinfer) não carrega, o ORT só escreve um erro no log e segue com
    # o próximo provedor da lista. Quem manda é get_providers() da sessão criada, não a lista de disponíveis.
    ep_active = ep_session.get_providers()
    print(f"provedores ativos na sessão: {ep_active}")
if not reason and ort_trt_ep and ep_active[0] != "TensorrtExecutionProvider":
    why = (f"o provedor TensorRT aparece em get_available_providers(), mas não carregou (falta a biblioteca do TensorRT, "
           f"libnvinfer): a sessão caiu para {ep_active[0]}, e um número dela seria de CUDA, não de TensorRT")
    skipped.append(("7. Provedor TensorRT do ONNX Runtime", why))
    print(f"Pulado: {why}.")
elif not reason and ort_trt_ep:
    feed = {"input_ids": ids.numpy()}
    start = time.perf_counter()
    ep_out = ep_session.run(["logits"], feed)[0]
    first_s = time.perf_counter() - start
    ms = measure_latency(lambda: ep_session.run(["logits"], feed), warmup=3, repeats=LAT_REPEATS)["median_ms"]
    agree = float((ep_out.argmax(-1) == ref_logits.argmax(-1)).mean())
    trt_results["ORT + TensorRT EP"] = {"ms": ms, "build_s": first_s, "diff": float(np.abs(ep_out - ref_logits).max()),
                                        "agree": agree}
    latencies["ORT + TensorRT EP"] = ms
    print(f"ORT + TensorRT EP: {ms:.2f} ms (primeira chamada, que monta o engine: {first_s:.0f} s) | mesmo argmax "
          f"que o PyTorch fp32 em {agree:.1%}")
    assert agree > 0.9

# %% [markdown]
# ## 8. O que foi medido e o que foi pulado

# %%
plot_bars(list(latencies), list(latencies.values()), f"Uma passada de {SEQ_LEN} tokens ({run_device})", "ms (mediana)")
plt.xticks(rotation=20, ha="right")
plt.show()
for name, ms in latencies.items():
    print(f"  {name:<28} {ms:8.2f} ms")
if skipped:
    print("\nCélulas puladas nesta execução (nenhum número delas aparece acima):")
    for section, why in skipped:
        print(f"  - {section}: {why}")
measured_trt = [name for name in latencies if "TensorRT" in name]
assert all(name in trt_results for name in measured_trt), "todo número de TensorRT exibido veio de uma medida"
claim("sem TensorRT, nenhum número de TensorRT e as células puladas são contadas",
      tensorrt_available or (not measured_trt and len(skipped) > 0), measured=len(skipped))

# %% [markdown]
# ## Exercícios
#
# **Exercício 1.** Qual o maior valor **finito** que o fp16 representa? (É o teto que conferimos na seção 3.)

# %% curso={"exercicio": "07.1", "resposta": "resposta_1"} tags=["exercicio"]
resposta_1 = None  # substitua por um número
check("07.1", resposta_1)


# %% [markdown]
# **Exercício 2.** Escreva a função que calcula o ganho de velocidade ("quantas vezes mais rápido") a partir de duas
# listas de tempos medidos (em ms): a do *eager* e a do compilado. Use a estatística robusta a picos que o curso usa.

# %% curso={"exercicio": "07.2", "resposta": "meu_ganho"} tags=["exercicio"]
def meu_ganho(tempos_eager, tempos_compilado):
    # seu código aqui
    ...

check("07.2", meu_ganho)


# %% [markdown]
# **Exercício 3.** Escreva a conferência de saídas usada neste notebook: recebe dois tensores de logits de mesmo formato
# `[lote, seq, vocabulário]` (referência e engine) e devolve `(diferença_máxima_absoluta, fração_de_posições_com_o_mesmo_argmax)`.

# %% curso={"exercicio": "07.3", "resposta": "minha_conferencia"} tags=["exercicio"]
def minha_conferencia(ref, outro):
    # seu código aqui
    ...

check("07.3", minha_conferencia)

# %% [markdown]
# ## Resumo

# %%
record("tensorrt_available", tensorrt_available)
record("torch_tensorrt_available", torch_tensorrt_available)
record("ort_tensorrt_ep_available", ort_trt_ep)
record("export_layers", n_layers)
record("onnx_max_abs_diff_fp32", onnx_diff)
record("fp16_max_abs_logit_diff", fp16_diff)
record("fp16_argmax_agreement", fp16_agree)
record("max_activation_fp32", largest["value"])
record("latency_ms_eager", eager_ms)
record("latency_ms_torch_compile", compiled_ms)
record("torch_compile_speedup", torch_compile_speedup)
record("torch_compile_device", run_device)
record("cells_skipped", len(skipped))
for name, r in trt_results.items():
    key = name.lower().replace(" ", "_").replace("(", "").replace(")", "").replace("+", "").replace("__", "_")
    record(f"latency_ms_{key}", r["ms"])
    record(f"argmax_agreement_{key}", r["agree"])

# %% [markdown]
# **Para levar.** (1) Numa T4, o caminho é Torch-TensorRT em fp16 (ou ONNX -> engine para servir sem PyTorch);
# TensorRT-LLM não suporta a T4. (2) Engine de formato fixo é o mais rápido para aquele formato; perfis de otimização
# trocam um pouco de velocidade por flexibilidade. (3) Confira sempre as saídas com a régua certa: em fp16, diferenças de
# décimos nos logits são normais; o que importa é escolher os mesmos tokens. Próximo: **08 · Um modelo 7B no Colab**.
