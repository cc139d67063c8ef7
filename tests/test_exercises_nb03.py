"""Exercícios do notebook 03: a referência oculta do 03.1 é a regra do accelerate de verdade; respostas erradas
realistas são recusadas com uma dica que não entrega a resposta; funções do pacote não passam."""

import importlib.util
import random
from pathlib import Path

import pytest
import torch
from accelerate import infer_auto_device_map

from course_utils import offload
from course_utils.exercises import evaluate

ROOT = Path(__file__).resolve().parent.parent


def _grading():
    spec = importlib.util.spec_from_file_location("grading_03", ROOT / "grading" / "03_offloading.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _accelerate_map(sizes, budget):
    """O mapa do infer_auto_device_map para módulos Linear de `sizes` floats (4 bytes cada), CPU com `budget`."""
    model = torch.nn.Module()
    for name, size in sizes.items():
        setattr(model, name, torch.nn.Linear(int(size), 1, bias=False, device="meta"))
    dm = infer_auto_device_map(model, max_memory={"cpu": int(4 * budget)}, clean_result=False)
    return {n: dm.get(n, dm.get("")) for n in sizes}


def test_referencia_oculta_do_03_1_e_a_regra_do_accelerate():
    fill_map = _grading().fill_map
    rng = random.Random(0)
    for _ in range(200):
        sizes = {f"m{i}": rng.randint(1, 20) for i in range(rng.randint(1, 6))}
        budget = rng.randint(0, 60)
        assert fill_map(sizes, budget) == _accelerate_map(sizes, budget), (sizes, budget)


def _sem_reserva(sizes, budget):  # a regra "enche até a borda", sem max_layer_size
    out, used, full = {}, 0.0, False
    for name, size in sizes.items():
        if not full and used + size <= budget:
            out[name], used = "cpu", used + size
        else:
            out[name], full = "disk", True
    return out


def _volta_atras(sizes, budget):  # encaixa módulos menores depois de um que não coube
    out, used = {}, 0.0
    names = list(sizes)
    for i, name in enumerate(names):
        reserve = max((sizes[n] for n in names[i + 1:]), default=0.0)
        if used + sizes[name] <= budget - reserve:
            out[name], used = "cpu", used + sizes[name]
        else:
            out[name] = "disk"
    return out


@pytest.mark.parametrize("wrong,hint", [(_sem_reserva, "max_layer_size"), (_volta_atras, "não volta atrás")])
def test_03_1_respostas_erradas_recebem_dica_sem_a_resposta(wrong, hint):
    ok, msg = evaluate("03.1", wrong)
    assert not ok and hint in msg
    assert "{" not in msg and "'cpu'" not in msg, "a dica não pode mostrar o mapa esperado"


def test_03_funcoes_do_pacote_nao_passam():
    for fn in (offload.device_map_for_budget, offload.summarize_device_map, offload.count_layers_on):
        assert not evaluate("03.1", fn)[0]
    for fn in (offload.to_device, offload.jit_offload, offload.checkpoint_offload_index):
        assert not evaluate("03.3", fn)[0]


def test_03_3_sem_converter_o_dtype_e_recusado():
    def so_dispositivo(module, args, kwargs):
        dev = module.weight.device
        return offload.to_device(args, dev), offload.to_device(kwargs, dev)

    ok, msg = evaluate("03.3", so_dispositivo)
    assert not ok and "dtype" in msg


def test_03_2_erro_de_unidade_recebe_dica():
    ok, msg = evaluate("03.2", 12.55 / 12)
    assert not ok and "GiB" in msg
