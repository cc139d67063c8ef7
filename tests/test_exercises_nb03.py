"""Exercícios do notebook 03: a referência oculta do 03.1 é a regra do accelerate de verdade; respostas erradas
realistas são recusadas com uma dica que não entrega a resposta; funções do pacote não passam."""

import importlib.util
import logging
import random
from pathlib import Path

import pytest
import torch
from accelerate import infer_auto_device_map

from course_utils import offload
from course_utils.exercises import evaluate, nb03

ROOT = Path(__file__).resolve().parent.parent


def _grading():
    spec = importlib.util.spec_from_file_location("grading_03", ROOT / "grading" / "03_offloading.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _accelerate_map(sizes, budgets):
    """O mapa do infer_auto_device_map para módulos Linear de `sizes` floats (4 bytes cada) e orçamentos `budgets`."""
    model = torch.nn.Module()
    for name, size in sizes.items():
        setattr(model, name, torch.nn.Linear(int(size), 1, bias=False, device="meta"))
    logging.getLogger("accelerate").setLevel(logging.ERROR)   # "Device 0 is not available": aqui não há GPU
    dm = infer_auto_device_map(model, max_memory={k: int(4 * v) for k, v in budgets.items()}, clean_result=False)
    return {n: dm.get(n, dm.get("")) for n in sizes}


def _random_budgets(rng):
    gpus = rng.choice([0, 0, 1, 2])
    return {**{g: rng.randint(0, 40) for g in range(gpus)}, "cpu": rng.randint(0, 60)}


def test_referencia_oculta_do_03_1_e_a_regra_do_accelerate():
    fill_map = _grading().fill_map
    rng = random.Random(0)
    for _ in range(300):
        sizes = {f"m{i}": rng.randint(1, 20) for i in range(rng.randint(1, 7))}
        budgets = _random_budgets(rng)
        assert fill_map(sizes, budgets) == _accelerate_map(sizes, budgets), (sizes, budgets)


def test_casos_publicos_do_03_1_sao_o_que_o_accelerate_devolve():
    for sizes, budgets, expected in nb03._MAP_CASES:
        assert _accelerate_map(sizes, budgets) == expected, (sizes, budgets)


def _variant(reserve_on=("first_gpu", "cpu"), go_back=False):
    """Respostas erradas realistas: a reserva nos dispositivos errados (nenhum, só o primeiro, todas as GPUs) ou voltar
    atrás."""
    def answer(sizes, budgets):
        devices = sorted(d for d in budgets if d != "cpu") + ["cpu", "disk"]
        gpus = devices[:-2]
        main = {"cpu"} if "cpu" in reserve_on else set()
        main |= set(gpus[:1]) if "first_gpu" in reserve_on else set()
        main |= set(gpus) if "all_gpus" in reserve_on else set()
        main |= {devices[0]} if "first_device" in reserve_on else set()
        names, out, current, used = list(sizes), {}, 0, dict.fromkeys(devices, 0.0)
        for i, name in enumerate(names):
            reserve = max((sizes[n] for n in names[i + 1:]), default=0.0)
            k = 0 if go_back else current
            while devices[k] != "disk" and used[devices[k]] + sizes[name] > budgets[devices[k]] - (
                    reserve if devices[k] in main else 0):
                k += 1
            current = max(current, k)
            out[name] = devices[k]
            used[devices[k]] += sizes[name]
        return out
    return answer


@pytest.mark.parametrize("wrong,hint", [
    (_variant(reserve_on=()), "max_layer_size"),
    (_variant(go_back=True), "não volta atrás"),
    (_variant(reserve_on=("first_device",)), "a CPU também"),
    (_variant(reserve_on=("all_gpus", "cpu")), "só a primeira GPU"),
])
def test_03_1_respostas_erradas_recebem_dica_sem_a_resposta(wrong, hint):
    assert _variant()(*nb03._MAP_CASES[-1][:2]) == nb03._MAP_CASES[-1][2]   # a variante certa passa
    ok, msg = evaluate("03.1", wrong)
    assert not ok and hint in msg, msg
    assert "{" not in msg and "'cpu':" not in msg, "a dica não pode mostrar o mapa esperado"


def test_03_1_delegar_ao_accelerate_e_recusado_e_a_regra_escrita_passa():
    import json
    import sys

    from course_utils.grader import collect
    from course_utils.grader.judge import judge_function
    from course_utils.grader.wire import encode_cases

    def delega(sizes, budgets):
        return _accelerate_map(sizes, budgets)

    ok, msg = evaluate("03.1", delega)
    assert not ok and "infer_auto_device_map" in msg, msg
    assert evaluate("03.1", _variant())[0]
    exercise = next(ex for ex in _grading().EXERCISES if ex.id == "03.1")
    cases = json.dumps(encode_cases(exercise))
    for answer, full in ((delega, False), (_variant(), True)):
        data = collect._answer_data({"montar_mapa": answer}, "montar_mapa", cases, 10.0)
        assert sys.getprofile() is None
        points, lines = judge_function(exercise, data)
        assert (points == exercise.points) == full, lines
        if not full:
            assert points == 0 and all("escreva a regra" in line for line in lines), lines


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
