"""Exportar um LM causal do PyTorch para ONNX (`torch.onnx.export(..., dynamo=True)`), com cache em disco.

O grafo exportado tem uma entrada, `input_ids` [lote, sequência], e uma saída, `logits`
[lote, sequência, vocabulário], com os eixos de lote e sequência dinâmicos: o mesmo arquivo serve
para qualquer lote e comprimento. Sem cache KV: é o grafo de uma passada inteira (o que a
perplexidade e um motor como o TensorRT consomem); a geração com cache fica com o model builder
do onnxruntime-genai (`course_utils.ort`).

Exportar com eixos dinâmicos custa caro na CPU (o exportador raciocina simbolicamente sobre os
formatos de cada camada), por isso `cached_export` guarda o resultado no diretório de cache do
curso, com uma chave que muda quando o modelo, as opções ou as versões mudam.
"""

import copy
import hashlib
import json
import os
import shutil
from importlib import metadata
from pathlib import Path

import torch

from .models import cache_dir


class LogitsOnly(torch.nn.Module):
    """Embrulha um LM do transformers: forward(input_ids) -> logits, sem cache (uma saída só, fácil de exportar)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids):
        return self.model(input_ids=input_ids, use_cache=False).logits


def truncated_copy(model, num_layers: int):
    """Cópia do modelo com só as primeiras `num_layers` camadas (mesmos pesos, mesma cabeça de saída).

    Exportar custa segundos por camada, e toda camada de um decoder é igual: exportar as primeiras mostra o
    mesmo grafo, repetido menos vezes. A cópia é um modelo completo que roda no PyTorch, então a comparação de
    logits com o ONNX continua honesta (compara-se com a mesma cópia).
    """
    total = len(model.model.layers)
    if not 1 <= num_layers <= total:
        raise ValueError(f"num_layers deve estar entre 1 e {total}; recebi {num_layers}.")
    small = copy.deepcopy(model)
    small.model.layers = small.model.layers[:num_layers]
    small.config.num_hidden_layers = num_layers
    if hasattr(small.config, "layer_types") and small.config.layer_types is not None:
        small.config.layer_types = small.config.layer_types[:num_layers]
    return small.eval()


def require_llama_layout(model, model_id: str = "o modelo"):
    """Confere que `model` é um decoder no estilo Llama, `model.model.layers[i].mlp.down_proj` (o que o notebook 06
    corta e mede); senão, levanta um ValueError que diz em português por que o modelo não serve. Devolve as camadas."""
    layers = getattr(getattr(model, "model", None), "layers", None)
    if layers is None or not all(hasattr(layer, "mlp") and hasattr(layer.mlp, "down_proj") for layer in layers):
        raise ValueError(f"{model_id} não é um decoder no estilo Llama (model.model.layers[i].mlp.down_proj): o "
                         "notebook corta camadas e mede a entrada da down_proj. Use um Llama, Qwen2/3, Mistral ou SmolLM.")
    return layers


def export_logits_model(model, path, example_len: int = 8, dynamic: bool = True, optimize: bool = True) -> Path:
    """Exporta `model` para `path` (ONNX + pesos em `path`.data) com torch.onnx.export(dynamo=True).

    O exemplo tem lote 2: com lote 1 o exportador especializaria o eixo do lote (0 e 1 são casos
    especiais no raciocínio simbólico de formatos) e o grafo só aceitaria lote 1.
    optimize=True roda o otimizador do onnxscript (dobra constantes, remove nós mortos).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    vocab = model.config.vocab_size
    example = torch.randint(0, vocab, (2, example_len), generator=torch.Generator().manual_seed(0))
    dynamic_shapes = None
    if dynamic:
        dynamic_shapes = {"input_ids": {0: torch.export.Dim("batch"), 1: torch.export.Dim("sequence")}}
    wrapper = LogitsOnly(model).eval()
    with torch.inference_mode(False), torch.no_grad():
        program = torch.onnx.export(wrapper, (example,), dynamo=True, input_names=["input_ids"],
                                    output_names=["logits"], dynamic_shapes=dynamic_shapes, optimize=optimize,
                                    verbose=False)
    for stale in (path, path.with_name(path.name + ".data")):
        stale.unlink(missing_ok=True)
    program.save(str(path), external_data=True)
    return path


def _versions() -> dict:
    out = {}
    for name in ("torch", "transformers", "onnx", "onnxscript", "onnx-ir"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def model_fingerprint(model) -> str:
    """Resumo barato dos pesos e da configuração (muda se o modelo mudar)."""
    h = hashlib.sha256(model.config.to_json_string().encode())
    with torch.no_grad():
        for name, p in model.state_dict().items():
            h.update(f"{name}{tuple(p.shape)}{p.dtype}{p.double().sum().item():.8e}".encode())
    return h.hexdigest()[:16]


def onnx_cache_dir() -> Path:
    """Onde ficam os artefatos ONNX do curso (ao lado dos modelos convertidos; mude com COURSE_CACHE_DIR)."""
    return cache_dir().parent / "onnx"


def cached_export(model, name: str, refresh: bool = False, **export_kwargs) -> tuple[Path, bool]:
    """Exporta uma vez e reaproveita: devolve (caminho do model.onnx, veio_do_cache).

    A chave junta o nome, a impressão digital do modelo, as opções e as versões do torch/onnx.
    A exportação vai para um diretório temporário e só então é renomeada: uma execução
    interrompida não deixa um cache pela metade.
    """
    key_src = json.dumps({"fp": model_fingerprint(model), "opts": export_kwargs, "v": _versions()}, sort_keys=True)
    key = hashlib.sha256(key_src.encode()).hexdigest()[:12]
    return cached_build(onnx_cache_dir() / f"{name}-{key}",
                        lambda path: export_logits_model(model, path, **export_kwargs), refresh)


def cached_build(out_dir: Path, build, refresh: bool = False):
    """Devolve (out_dir/model.onnx, veio_do_cache); sem cache, `build(caminho)` grava num diretório temporário
    que só então é renomeado: uma execução interrompida não deixa um cache pela metade."""
    out_dir = Path(out_dir)
    path = out_dir / "model.onnx"
    if path.exists() and not refresh:
        return path, True
    tmp = out_dir.with_name(out_dir.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        build(tmp / "model.onnx")
    except BaseException:  # uma construção que falha (ou é interrompida) não deixa a pasta temporária
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return path, False


def op_input_types(path, op_type: str = "Pow") -> list:
    """Tipo (nome do TensorProto: 'FLOAT', 'FLOAT16', ...) da primeira entrada de cada nó `op_type` do grafo.

    Serve para ver em que precisão uma conta acontece (o x² de uma RMSNorm é um `Pow`). Usa a inferência
    de tipos do ONNX; não carrega os pesos.
    """
    import onnx
    from onnx import TensorProto

    model = onnx.shape_inference.infer_shapes(onnx.load(str(path), load_external_data=False))
    graph = model.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*graph.value_info, *graph.input, *graph.output]}
    types.update({t.name: t.data_type for t in graph.initializer})
    for node in graph.node:  # um Cast diz o tipo da saída mesmo sem a inferência
        if node.op_type == "Cast":
            types[node.output[0]] = next(a.i for a in node.attribute if a.name == "to")
    nodes = [n for n in graph.node if n.op_type == op_type]
    return [TensorProto.DataType.Name(types.get(n.input[0], 0)) for n in nodes]
