"""Testes do offload escrito à mão e das medidas em processo novo (course_utils.offload).

Sem GPU, o dispositivo `meta` faz o papel do "outro dispositivo": um forward nele só calcula formatos,
o que basta para conferir onde ficam pesos, entradas e saídas a cada passo.
"""

import mmap

import pytest
import torch

from course_utils import offload as O

pytestmark = pytest.mark.usefixtures("single_thread")


def _stack(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(*[torch.nn.Linear(16, 16) for _ in range(4)]).eval()


def test_saida_fica_no_dispositivo_de_computacao_e_pesos_voltam_ao_armazenamento():
    model = _stack()
    seen = []
    for block in model:
        block.register_forward_hook(lambda mod, args, out: seen.append((mod.weight.device.type, out.device.type)))
    remove = O.jit_offload(list(model), "meta", "cpu")
    out = model(torch.randn(2, 16))
    assert out.device.type == "meta", "a saída deve ficar onde o próximo bloco roda"
    assert seen == [("meta", "meta")] * 4, "durante o forward de cada bloco, pesos e saída estão no dispositivo"
    assert all(p.device.type == "cpu" for p in model.parameters()), "depois do forward os pesos voltam ao armazenamento"
    remove("cpu")
    assert all(len(m._forward_pre_hooks) == 0 for m in model)


def test_entradas_em_outro_dispositivo_sao_movidas():
    block = torch.nn.Linear(8, 8)
    remove = O.jit_offload([block], "meta", "cpu")
    out = block(torch.randn(3, 8))  # entrada na CPU, pesos levados ao meta: o pre-hook move a entrada também
    assert out.device.type == "meta"
    remove()


def test_offload_para_o_disco_reproduz_o_modelo_e_libera_a_ram(tiny, tmp_path):
    ids = torch.randint(0, 256, (1, 12), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ref = tiny(ids).logits
    before = O.resident_bytes(tiny)
    layer_bytes = sum(p.numel() * p.element_size() for p in tiny.model.layers.parameters())
    remove = O.jit_offload(tiny.model.layers, "cpu", tmp_path / "blocos")
    assert len(list((tmp_path / "blocos").glob("*.safetensors"))) == len(tiny.model.layers)
    between = O.resident_bytes(tiny)
    assert between == before - layer_bytes, "entre chamadas, os blocos não ocupam RAM"
    with torch.inference_mode():
        got = tiny(ids).logits
    assert torch.equal(got, ref)
    assert O.resident_bytes(tiny) == between, "depois do forward os blocos voltam a ocupar só o disco"
    remove("cpu")
    assert O.resident_bytes(tiny) == before
    with torch.inference_mode():
        assert torch.equal(tiny(ids).logits, ref)


def test_generate_com_offload_da_os_mesmos_tokens(tiny, tmp_path):
    ids = torch.randint(0, 256, (1, 6), generator=torch.Generator().manual_seed(1))
    kw = dict(max_new_tokens=8, min_new_tokens=8, do_sample=False, pad_token_id=0, attention_mask=torch.ones_like(ids))
    ref = tiny.generate(ids, **kw)
    remove = O.jit_offload(tiny.model.layers, "cpu", tmp_path / "b")
    assert torch.equal(tiny.generate(ids, **kw), ref)
    remove()


def test_to_device_recursivo():
    x = {"a": (torch.zeros(2), [torch.ones(1), 3]), "b": "texto"}
    y = O.to_device(x, "meta")
    assert y["a"][0].device.type == "meta" and y["a"][1][0].device.type == "meta"
    assert y["a"][1][1] == 3 and y["b"] == "texto" and isinstance(y["a"], tuple) and isinstance(y["a"][1], list)


def test_resumo_do_mapa_e_contagem_de_camadas():
    dm = {"model.embed_tokens": "cpu", "lm_head": "cpu", **{f"model.layers.{i}": "cpu" for i in range(3)},
          **{f"model.layers.{i}": "disk" for i in range(3, 10)}, "model.norm": "disk"}
    s = O.summarize_device_map(dm)
    assert s == {"cpu": "model.embed_tokens, lm_head, model.layers.0-2", "disk": "model.layers.3-9, model.norm"}
    assert O.count_layers_on(dm, "disk", 10) == 7 and O.count_layers_on(dm, "cpu", 10) == 3
    assert O.count_layers_on({"": "disk"}, "disk", 30) == 30
    assert O.count_layers_on({"model.layers": "cpu", "model.embed_tokens": 0}, "cpu", 12) == 12
    assert O.count_layers_on({"model.layers.0": 0}, 0, 5) == 1


def test_zerar_o_pico_de_rss():
    if not O.reset_peak_rss():
        pytest.skip("este sistema não permite zerar o VmHWM")
    base = O.peak_rss_since_reset_mb()
    # mmap anônimo: volta ao sistema no close(), seja qual for o estado do alocador (numa suíte longa, o malloc
    # pode servir 64 MiB de memória já residente e não devolvê-la no free)
    block = mmap.mmap(-1, 64 * 2**20)
    block.write(b"\1" * len(block))  # toca todas as páginas
    high = O.peak_rss_since_reset_mb()
    block.close()
    assert high >= base + 50
    assert O.reset_peak_rss()
    assert O.peak_rss_since_reset_mb() < high - 40


def test_medida_em_processo_novo(tiny, tmp_path):
    tiny.save_pretrained(tmp_path / "modelo")
    prompt = [5, 17, 99, 3]
    common = dict(prompt_ids=prompt, pad_id=0, new_tokens=4, threads=1)
    mem = O.measure_isolated(tmp_path / "modelo", "memory", **common)
    disk = O.measure_isolated(tmp_path / "modelo", "disk", budget_mb=0.05, offload_folder=tmp_path / "off", **common)
    assert mem["output_ids"] == disk["output_ids"] and len(mem["output_ids"]) == 4
    assert "disk" in disk["device_map"].values() and disk["offloaded_bytes"] > 0 and mem["offloaded_bytes"] == 0
    total = sum(p.numel() * p.element_size() for p in tiny.parameters())
    assert mem["resident_param_bytes"] == total, "em memória, todos os pesos estão carregados"
    assert disk["resident_param_bytes"] + disk["offloaded_bytes"] == total, "o que não está na RAM está no disco"
    assert disk["resident_param_bytes"] <= 0.05 * 2**20, "na RAM fica no máximo o orçamento"
    for r in (mem, disk):
        # a linha de base vem depois das importações e do aquecimento; o pico conta a partir dela
        assert r["rss_peak_mb"] >= r["rss_after_load_mb"] >= r["rss_baseline_mb"] >= r["rss_imports_mb"]
        assert r["threads"] == 1 and r["new_tokens"] == 4


def test_mapa_para_um_orcamento_e_bytes_por_dispositivo(tiny):
    total = sum(p.numel() * p.element_size() for p in tiny.parameters())
    everything = O.device_map_for_budget(tiny, 4 * total)
    assert set(everything.values()) == {"cpu"}
    half = O.device_map_for_budget(tiny, total // 2)
    per_device = O.bytes_by_device(tiny, half)
    assert per_device.get("cpu", 0) + per_device["disk"] == total and per_device.get("cpu", 0) <= total // 2
    assert O.bytes_by_device(tiny, {"": "disk"}) == {"disk": total}
    with pytest.raises(ValueError, match="orçamento"):
        O.device_map_for_budget(tiny, -1)


def test_indice_de_offload_aponta_so_os_tensores_do_disco(tiny, tmp_path):
    tiny.save_pretrained(tmp_path)
    f = tmp_path / "model.safetensors"
    index = O.checkpoint_offload_index(f, {"model.embed_tokens": "cpu", "model.layers.0": "disk", "lm_head": "cpu"})
    assert index and all(k.startswith("model.layers.0.") for k in index)
    assert all(v == {"safetensors_file": str(f), "weight_name": k} for k, v in index.items())
    assert O.checkpoint_offload_index(f, {"": "cpu"}) == {}


def test_os_bugs_do_material_antigo_existem_como_a_licao_diz(tiny, tmp_path):
    layers = list(tiny.model.layers)
    assert O.seed_apply_cpu_offloading(tiny, layer_indices=[0]) is tiny
    assert list(tiny.model.layers) == layers, "num causal LM do HF o código antigo não acha os blocos"
    import copy

    wrapped = [O.SeedDiskOffloadModule(copy.deepcopy(b), temp_dir=str(tmp_path)) for b in layers]
    assert [p.name for p in tmp_path.iterdir()] == ["module.pt"]
    with pytest.raises(RuntimeError, match="size mismatch"):
        wrapped[0]._load_from_disk()


def test_medida_em_processo_novo_recusa_parametros_ruins(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        O.measure_isolated(tmp_path, "swap", [1], 0)
    with pytest.raises(ValueError, match="budget_mb"):
        O.measure_isolated(tmp_path, "disk", [1], 0)
    with pytest.raises(RuntimeError, match="falhou"):
        O.measure_isolated(tmp_path / "nao-existe", "memory", [1], 0, new_tokens=1)


def test_explore_fora_do_jupyter_roda_os_valores_padrao_uma_vez(capsys):
    from course_utils.display import explore

    calls = []

    def fn(fraction=0.25):
        calls.append(fraction)
        print(f"fração {fraction}")

    explore(fn, fraction=(0.05, 1.0, 0.05))
    assert calls == [0.25] and "fração 0.25" in capsys.readouterr().out


def test_sonda_do_accelerate_le_o_padrao_e_o_codigo_do_gancho():
    def set_tensor(module, name, device, value=None, clear_cache=True):
        pass

    def set_tensor_sem_argumento(module, name, device, value=None):
        pass

    def gancho_com_o_padrao(self, module, *args):
        set_tensor(module, "w", 0)

    def gancho_explicito(self, module, *args):
        set_tensor(module, "w", 0, clear_cache=False)

    assert O.accelerate_hook_empties_cache(set_tensor, gancho_com_o_padrao) == {
        "default": True, "hook_uses_default": True, "empties_cache": True}
    assert O.accelerate_hook_empties_cache(set_tensor, gancho_explicito)["empties_cache"] is False
    sem = O.accelerate_hook_empties_cache(set_tensor_sem_argumento, gancho_com_o_padrao)
    assert sem["default"] is None and sem["empties_cache"] is False
    instalado = O.accelerate_hook_empties_cache()   # o accelerate deste ambiente: só os tipos
    assert isinstance(instalado["hook_uses_default"], bool) and isinstance(instalado["empties_cache"], bool)


def test_mapa_a_mao_poe_exatamente_os_ultimos_blocos_na_cpu(tiny):
    from course_utils.offload import count_layers_on, last_blocks_on_cpu_map

    n = tiny.config.num_hidden_layers
    for k in range(n + 1):
        dm = last_blocks_on_cpu_map(tiny, k)
        assert count_layers_on(dm, "cpu", n) == k
        assert [dm[f"model.layers.{i}"] for i in range(n)] == [0] * (n - k) + ["cpu"] * k
        covered = {name for name, _ in tiny.named_parameters()}
        assert all(any(p == m or p.startswith(m + ".") for m in dm) for p in covered), "o mapa deve cobrir o modelo"
    with pytest.raises(ValueError):
        last_blocks_on_cpu_map(tiny, n + 1)


def test_a_string_do_material_antigo_nao_compila():
    from course_utils.offload.seed import SEED_DISK_OFFLOADING_EXAMPLE

    assert "class DiskOffloadModule" in SEED_DISK_OFFLOADING_EXAMPLE
    with pytest.raises(SyntaxError):
        compile(SEED_DISK_OFFLOADING_EXAMPLE, "antigo", "exec")
