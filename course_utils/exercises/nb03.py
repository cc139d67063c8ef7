"""Juízes dos exercícios do notebook 03 (offloading), registrados com @exercise."""

import torch

from . import _judge_number, delegation_message, exercise, watch_calls
from .nb04 import DELEGATES

# Casos públicos do 03.1: (tamanhos em MiB, orçamentos em MiB, mapa que o infer_auto_device_map do accelerate 1.15
# devolveu para módulos desses tamanhos). Só dados: a solução não mora no pacote do aluno.
_MAP_CASES = [
    ({"embed": 100, "l0": 10, "l1": 10, "l2": 10, "head": 5}, {"cpu": 125},
     {"embed": "cpu", "l0": "cpu", "l1": "disk", "l2": "disk", "head": "disk"}),
    ({"embed": 100, "l0": 10, "l1": 10, "l2": 10, "head": 5}, {"cpu": 140},
     {"embed": "cpu", "l0": "cpu", "l1": "cpu", "l2": "cpu", "head": "cpu"}),
    ({"a": 5, "b": 5, "c": 5}, {"cpu": 15}, {"a": "cpu", "b": "cpu", "c": "cpu"}),
    ({"a": 2, "b": 2, "c": 1, "d": 3}, {"cpu": 7}, {"a": "cpu", "b": "cpu", "c": "disk", "d": "disk"}),
    ({"grande": 200, "pequeno": 1}, {"cpu": 100}, {"grande": "disk", "pequeno": "disk"}),
    ({"emb": 40, "l0": 10, "l1": 10, "l2": 10, "l3": 10, "head": 40}, {0: 100, "cpu": 60},
     {"emb": 0, "l0": 0, "l1": 0, "l2": "cpu", "l3": "cpu", "head": "cpu"}),
    ({"emb": 40, "l0": 10, "l1": 10, "l2": 10, "l3": 10, "head": 40}, {0: 70, "cpu": 100},
     {"emb": "cpu", "l0": "cpu", "l1": "cpu", "l2": "disk", "l3": "disk", "head": "disk"}),
    ({"a": 10, "b": 10, "c": 10, "d": 10, "e": 10}, {0: 30, 1: 20, "cpu": 25},
     {"a": 0, "b": 0, "c": 1, "d": 1, "e": "cpu"}),
    ({"a": 10, "b": 10, "c": 10, "d": 10, "e": 10, "f": 10}, {0: 25, 1: 20, "cpu": 30},
     {"a": 0, "b": 1, "c": 1, "d": "cpu", "e": "cpu", "f": "cpu"}),
]


def _accelerate_functions() -> tuple:
    """O que já monta o mapa (o exercício pede escrever a regra): o accelerate, o transformers e o pacote."""
    from accelerate import infer_auto_device_map
    from transformers.integrations import accelerate as hf_accelerate

    from ..offload import device_map_for_budget

    return infer_auto_device_map, hf_accelerate.infer_auto_device_map, device_map_for_budget


def _map_hint(sizes, budgets, got):
    """Dica a partir das propriedades do mapa do aluno (sem calcular o mapa certo)."""
    names = list(sizes)
    devices = list(budgets) + ["disk"]
    gpus = [d for d in budgets if d != "cpu"]
    main = {gpus[0], "cpu"} if gpus else {"cpu"}
    order = [devices.index(got[n]) for n in names]
    if any(b < a for a, b in zip(order, order[1:], strict=False)):
        return ("depois que um módulo passa para o próximo dispositivo, os seguintes não voltam: o accelerate "
                "preenche em ordem (GPUs, CPU, disco) e não volta atrás para encaixar módulos menores.")
    for dev in devices[:-1]:
        on_dev = [n for n in names if got[n] == dev]
        if sum(sizes[n] for n in on_dev) > budgets[dev]:
            return f"o que ficou em {dev!r} passa do orçamento dele: some os tamanhos em ordem."
        used = 0.0
        for name in on_dev:
            used += sizes[name]
            later = [sizes[n] for n in names[names.index(name) + 1:]]
            if dev in main and later and used > budgets[dev] - max(later):
                if dev == "cpu" and gpus:
                    return ("com GPU, a CPU também é um dispositivo principal: ela também reserva o espaço da maior "
                            "camada que ainda vem depois (para trazer uma camada do disco).")
                return ("o accelerate não enche o dispositivo até a borda: ele deixa livre o espaço da maior camada "
                        "que ainda vem depois (max_layer_size), para trazer uma camada de fora de cada vez.")
        moved = [n for n in names if devices.index(got[n]) > devices.index(dev)]
        if moved and dev not in main and used + sizes[moved[0]] <= budgets[dev]:
            return ("só a primeira GPU e a CPU reservam a maior camada; as outras GPUs enchem até o orçamento.")
    return ("um módulo que cabia foi para o dispositivo seguinte: confira a comparação (um módulo que cabe exatamente "
            "ainda cabe) e a reserva, que é a maior camada que vem DEPOIS do módulo, não a maior de todas.")


# os testes ocultos do 03.1 proíbem as mesmas funções (forbidden= em grading/03_offloading.py)
DELEGATES["03.1"] = _accelerate_functions


@exercise("03.1", "mapa de dispositivos para um orçamento",
          "uma função f(tamanhos_mb, orcamentos_mb) -> dict {módulo: 0, 1, ..., 'cpu' ou 'disk'}")
def _device_map_budget(answer):
    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    for sizes, budgets, expected in _MAP_CASES:
        with watch_calls(*_accelerate_functions()) as called:
            got = answer(dict(sizes), dict(budgets))
        if called:
            return False, delegation_message(called)
        if got is None:
            return False, "a função ainda devolve None: escreva o corpo e devolva o dict."
        if not isinstance(got, dict):
            return False, f"devolva um dict {{módulo: dispositivo}}, não {type(got).__name__}."
        if set(got) != set(sizes):
            return False, "o mapa deve ter exatamente os módulos do dict de entrada, nem mais nem menos."
        bad = [v for v in got.values() if v not in (*budgets, "disk") or isinstance(v, bool)]
        if bad:
            return False, (f"cada valor deve ser uma chave de orcamentos_mb ({', '.join(map(repr, budgets))}) ou "
                           f"'disk' (veio {bad[0]!r}).")
        if got != expected:
            return False, _map_hint(sizes, budgets, got)
    return True, ("correto! É a regra do infer_auto_device_map: em ordem, reservando na primeira GPU e na CPU a maior "
                  "camada que falta, sem voltar atrás.")


@exercise("03.2", "segundos por token para copiar um 7B fp16 pela PCIe", "um número (segundos, float)")
def _pcie_seconds(answer):
    size = 12.55 * 2**30  # bytes (GiB -> bytes)
    expected = size / 12e9
    return _judge_number(answer, expected, 0.01, [
        (12.55 / 12, "GiB não é GB: 12,55 GiB = 12,55 × 2³⁰ bytes, e a banda está em 10⁹ bytes por segundo."),
        (size * 8 / 12e9, "a banda já está em bytes por segundo: não multiplique por 8."),
        (12e9 / size, "é o contrário: bytes a copiar divididos pela banda."),
    ])


@exercise("03.3", "pre-hook que alinha as entradas",
          "uma função f(module, args, kwargs) -> (args, kwargs)")
def _align_inputs(answer):
    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    gen = torch.Generator().manual_seed(3)
    for device, dtype, in_dtype in (("meta", torch.bfloat16, torch.float32), ("cpu", torch.float32, torch.float16)):
        module = torch.nn.Linear(4, 4).to(device=device, dtype=dtype)
        x = torch.randn(2, 4, generator=gen).to(in_dtype)
        ids = torch.arange(3)
        cos, sin = torch.randn(3, generator=gen).to(in_dtype), torch.randn(3, generator=gen).to(in_dtype)
        mask = torch.ones(3, dtype=torch.bool)
        out = answer(module, (x, ids), {"position_embeddings": (cos, sin), "attention_mask": mask,
                                        "use_cache": True, "layer_idx": 3})
        if out is None:
            return False, "a função ainda devolve None: devolva a tupla (args, kwargs)."
        if not (isinstance(out, (tuple, list)) and len(out) == 2 and isinstance(out[1], dict)):
            return False, ("devolva uma tupla (args, kwargs), com kwargs um dict (é o que o pre-hook com with_kwargs "
                           "devolve).")
        args, kwargs = out
        if not isinstance(args, (tuple, list)) or len(args) != 2:
            return False, "args deve continuar sendo uma tupla com as mesmas duas entradas."
        if not all(isinstance(t, torch.Tensor) for t in (args[0], args[1], kwargs.get("attention_mask"))):
            return False, "as entradas que eram tensores devem continuar sendo tensores."
        moved = (args[0], args[1], kwargs["attention_mask"])
        if any(t.device.type != device for t in moved):
            return False, "todo tensor precisa ir para o dispositivo do peso (module.weight.device)."
        if args[1].dtype != torch.int64 or kwargs["attention_mask"].dtype != torch.bool:
            return False, ("inteiros (ids de tokens) e booleanos (máscaras) não podem mudar de dtype: converta só os "
                           "de ponto flutuante (t.is_floating_point()).")
        if args[0].dtype != dtype:
            return False, "os tensores de ponto flutuante devem ir para o dtype do peso (module.weight.dtype)."
        pe = kwargs.get("position_embeddings")
        if not isinstance(pe, (tuple, list)) or len(pe) != 2 or not all(isinstance(t, torch.Tensor) for t in pe):
            return False, "position_embeddings deve continuar sendo uma tupla (cos, sin) de tensores."
        if any(t.device.type != device or t.dtype != dtype for t in pe):
            return False, ("os tensores dentro de tuplas (position_embeddings = (cos, sin)) também precisam ser "
                           "alinhados: trate tuplas e listas recursivamente.")
        if kwargs.get("use_cache") is not True or kwargs.get("layer_idx") != 3:
            return False, "o que não é tensor (True, 3) deve passar intacto."
        if device == "cpu" and not torch.equal(args[0], x.to(dtype)):
            return False, "os valores mudaram: só o dispositivo e o dtype deveriam mudar."
    return True, "correto! É o que o AlignDevicesHook do accelerate faz antes de cada forward."
