"""Testes ocultos do notebook 03 (offloading para CPU e disco). Arquivo do professor.

Edite à vontade os pontos (de cada teste) e os casos. Mudar pontos, nomes ou as soluções de referência só
recalcula as notas; mudar as entradas dos casos faz o corretor executar as entregas de novo.
"""

import torch

from course_utils.grade import Case, Check, Code, FunctionExercise, ValueExercise, number

# ---------------------------------------------------------------- soluções de referência

PCIE_SECONDS = 12.55 * 2**30 / 12e9  # 12,55 GiB de pesos fp16 a 12 GB/s


def fill_map(sizes_mb, budgets_mb):
    """A regra do infer_auto_device_map (accelerate 1.x): dispositivos em ordem (GPUs, CPU, disco), sem voltar atrás.

    Um módulo fica no dispositivo atual se o acumulado couber no orçamento; nos dispositivos principais (a primeira
    GPU e a CPU) o orçamento perde a reserva para a maior camada que ainda vem depois (max_layer_size, o espaço para
    trazer uma camada de fora); as outras GPUs não reservam. Não coube: o dispositivo seguinte, para este e os demais.
    """
    devices = sorted(d for d in budgets_mb if d != "cpu") + (["cpu"] if "cpu" in budgets_mb else []) + ["disk"]
    gpus = devices[:-2] if "cpu" in budgets_mb else devices[:-1]
    main = {gpus[0], "cpu"} if gpus else {"cpu"}
    names, out, current = list(sizes_mb), {}, 0
    used = dict.fromkeys(devices, 0.0)
    for i, name in enumerate(names):
        reserve = max((sizes_mb[n] for n in names[i + 1:]), default=0.0)
        while devices[current] != "disk":
            dev = devices[current]
            if used[dev] + sizes_mb[name] <= budgets_mb[dev] - (reserve if dev in main else 0.0):
                break
            current += 1
        out[name] = devices[current]
        used[devices[current]] += sizes_mb[name]
    return out


def align_inputs(module, args, kwargs):
    """Leva todo tensor ao dispositivo do peso; os de ponto flutuante também ao dtype do peso (recursivo)."""
    device, dtype = module.weight.device, module.weight.dtype

    def move(x):
        if isinstance(x, torch.Tensor):
            return x.to(device=device, dtype=dtype) if x.is_floating_point() else x.to(device)
        if isinstance(x, (tuple, list)):
            return type(x)(move(item) for item in x)
        if isinstance(x, dict):
            return {k: move(v) for k, v in x.items()}
        return x

    return move(tuple(args)), move(dict(kwargs))


def same_map(got, expected):
    if not isinstance(got, dict):
        return False, f"devolva um dict {{módulo: dispositivo}}, não {type(got).__name__}"
    if set(got) != set(expected):
        return False, "o mapa deve ter exatamente os módulos da entrada"
    wrong = sum(got[k] != v for k, v in expected.items())
    return (True, "correto") if not wrong else (False, f"o dispositivo não confere em {wrong} módulo(s)")


def same_inputs(got, expected, where="saída"):
    """Mesma estrutura; cada tensor no dispositivo e dtype esperados (e, fora do meta, com os mesmos valores)."""
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return False, f"{where} deveria continuar sendo um tensor"
        if got.device.type != expected.device.type:
            return False, f"{where} ficou em {got.device.type}: todo tensor vai para o dispositivo do peso"
        if got.dtype != expected.dtype:
            return False, (f"{where} ficou com dtype {str(got.dtype).replace('torch.', '')}: ponto flutuante vai "
                           f"para o dtype do peso; inteiros e booleanos não mudam")
        if got.shape != expected.shape or (expected.device.type != "meta" and not torch.equal(got, expected)):
            return False, f"{where} mudou de formato ou de valores"
        return True, "correto"
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return False, f"{where} deveria ser uma sequência com {len(expected)} item(ns)"
        for k, (g, e) in enumerate(zip(got, expected, strict=True)):
            ok, message = same_inputs(g, e, f"{where}[{k}]")
            if not ok:
                return ok, message
        return True, "correto"
    if isinstance(expected, dict):
        if not isinstance(got, dict) or set(got) != set(expected):
            return False, f"{where} deveria ter as chaves {sorted(expected)}"
        for key in expected:
            ok, message = same_inputs(got[key], expected[key], f"{where}[{key!r}]")
            if not ok:
                return ok, message
        return True, "correto"
    if type(got) is not type(expected) or got != expected:
        return False, f"{where}: o que não é tensor deve passar intacto"
    return True, "correto"


# ---------------------------------------------------------------- entradas ocultas

def hook_inputs(seed, in_dtype, n=5):
    """(args, kwargs) como os de uma camada do decoder, com tuplas e listas aninhadas."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 4, generator=gen).to(in_dtype)
    cos, sin = (torch.randn(n, generator=gen).to(in_dtype) for _ in range(2))
    kwargs = {"position_embeddings": (cos, sin), "attention_mask": torch.ones(n, dtype=torch.bool),
              "extra": [torch.arange(n), None], "use_cache": False, "layer_idx": 7, "name": "camada"}
    return (x, torch.arange(n)), kwargs


META_BF16 = Code("torch.nn.Linear(4, 4, device='meta', dtype=torch.bfloat16)")
CPU_FP64 = Code("torch.nn.Linear(4, 4, dtype=torch.float64)")

EXERCISES = [
    FunctionExercise("03.1", answer="montar_mapa", reference=fill_map, compare=same_map,
                     forbidden=("accelerate.utils.modeling:infer_auto_device_map",
                                "transformers.integrations.accelerate:infer_auto_device_map",
                                "course_utils.offload:device_map_for_budget"), cases=[
        Case(({"emb": 50.0, "l0": 20.0, "l1": 20.0, "l2": 20.0, "head": 50.0}, {"cpu": 160.0}), 1,
             "cabe exatamente"),
        Case(({"emb": 50.0, "l0": 20.0, "l1": 20.0, "l2": 20.0, "head": 10.0}, {"cpu": 100.0}), 1,
             "reserva da maior camada"),
        Case(({"a": 1.5, "b": 2.5, "c": 1.0, "d": 0.5}, {"cpu": 5.0}), 1, "sem voltar atrás"),
        Case(({"a": 0.0, "b": 3.0}, {"cpu": 0.0}), 0.5, "orçamento zero"),
        Case(({"x": 10.0}, {"cpu": 5.0}), 0.5, "nada cabe"),
        Case(({"emb": 30.0, "l0": 10.0, "l1": 10.0, "l2": 10.0, "head": 30.0}, {0: 60.0, "cpu": 50.0}), 1,
             "GPU e CPU: as duas reservam"),
        Case(({"emb": 30.0, "l0": 10.0, "l1": 10.0, "l2": 10.0, "head": 5.0}, {0: 50.0, "cpu": 45.0}), 1,
             "GPU, CPU e disco"),
        Case(({f"l{i}": 8.0 for i in range(6)}, {0: 20.0, 1: 16.0, "cpu": 12.0}), 1,
             "duas GPUs: só a primeira reserva"),
        Case(({}, {"cpu": 10.0}), 0.5, "modelo vazio"),
    ]),
    ValueExercise("03.2", answer="resposta_2", reference=PCIE_SECONDS, checks=[
        Check("segundos por token para copiar 12,55 GiB a 12 GB/s", 2, number(PCIE_SECONDS, rel_tol=0.01)),
    ]),
    FunctionExercise("03.3", answer="alinhar_entradas", reference=align_inputs, compare=same_inputs, cases=[
        Case((META_BF16, *hook_inputs(301, torch.float32)), 2, "peso no meta em bf16"),
        Case((CPU_FP64, *hook_inputs(302, torch.float16, n=3)), 2, "peso na CPU em float64"),
    ]),
]
